// 仓运通 PDA: one page, a few screens, the edge's JSON API. No framework, nothing downloaded.
// The in-progress screen lives in sessionStorage so a reload (or a session that expired
// mid-task) loses nothing; the language choice lives in localStorage.
"use strict";
(function () {
  const FRAME_INTERVAL_MS = 250;    // pause between camera frames sent to the edge
  const FRAME_LONG_SIDE = 1280;     // frames are scaled down to this before upload
  const PHOTO_LONG_SIDE = 2048;     // photos too: faster on Wi-Fi, enough for OCR
  const PHOTO_MAX_MB = 20;          // larger files are refused before uploading
  const BURST_GAP_MS = 40;          // keys closer than this come from a scanner, not a thumb
  const BURST_END_MS = 120;         // a burst without Enter ends after this silence
  const BURST_MIN_CHARS = 6;
  const STATUS_INTERVAL_MS = 4000;
  const EXPIRY_WARN_DAYS = 30;
  const MAX_QTY = 1000000;
  const MAX_WEIGHT_KG = 100000;
  const GS = "\x1d";
  const FLOWS = {
    receive: { steps: ["item", "confirm"], fields: ["customer", "qty", "weight", "location"] },
    putaway: { steps: ["item", "location", "confirm"], fields: ["customer", "qty"] },
    pick: { steps: ["item", "location", "confirm"], fields: ["customer", "qty"] },
    ship: { steps: ["item", "confirm"], fields: ["customer", "qty"] },
    lookup: { steps: ["lookup"], fields: [] },
  };
  const STATE_KEY = "cangyun.pda.state";
  const LANG_KEY = "cangyun.pda.lang";

  const $ = (id) => document.getElementById(id);
  let lang = localStorage.getItem(LANG_KEY) || "zh";
  let state = loadState();
  let camera = null; // {stream, track, timer, torch}
  let statusTimer = null;
  let audio = null;
  window.pdaFeedback = []; // what the operator heard/felt, for automated checks

  // --- small helpers -------------------------------------------------------------------

  function loadState() {
    try { return JSON.parse(sessionStorage.getItem(STATE_KEY)) || {}; } catch (e) { return {}; }
  }
  function save() { sessionStorage.setItem(STATE_KEY, JSON.stringify(state)); }

  function t(key, params) {
    const table = window.PDA_TEXT[lang] || window.PDA_TEXT.zh;
    let text = table[key] !== undefined ? table[key] : (window.PDA_TEXT.zh[key] || key);
    for (const [name, value] of Object.entries(params || {})) {
      text = text.split("{" + name + "}").join(String(value));
    }
    return text;
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name === "className") node.className = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function newKey() {
    // crypto.randomUUID needs a secure context; plain-HTTP PDAs have getRandomValues only.
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return "pda-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function ago(seconds) {
    const s = Math.max(0, Math.round(seconds));
    if (s < 60) return t("age_s", { n: s });
    if (s < 3600) return t("age_m", { n: Math.round(s / 60) });
    if (s < 86400) return t("age_h", { n: Math.round(s / 3600) });
    return t("age_d", { n: Math.round(s / 86400) });
  }

  function clock(ts) {
    const d = new Date(ts);
    const opts = { hour: "2-digit", minute: "2-digit" };
    const sameDay = d.toDateString() === new Date().toDateString();
    if (!sameDay) Object.assign(opts, { month: "2-digit", day: "2-digit" });
    return d.toLocaleString(lang === "zh" ? "zh-CN" : "en-GB", opts);
  }

  function pieces(n) {
    return n === null || n === undefined ? null : n + (lang === "zh" ? " 件" : " pcs");
  }
  function kg(n) { return n === null || n === undefined ? null : n + " kg"; }

  function place(location) {
    if (!location) return t("dock");
    return location === "STAGING" ? t("staging") + " STAGING" : location;
  }

  // --- feedback ------------------------------------------------------------------------

  function feedback(kind) {
    window.pdaFeedback.push(kind);
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      if (audio.state === "suspended") audio.resume();
      // Success: two rising short tones. Error: two low buzzes. Told apart without looking.
      const tones = kind === "ok" ? [[880, 0, 0.08], [1320, 0.1, 0.12]] : [[220, 0, 0.2], [170, 0.26, 0.28]];
      for (const [freq, at, length] of tones) {
        const osc = audio.createOscillator();
        const gain = audio.createGain();
        osc.type = kind === "ok" ? "sine" : "square";
        osc.frequency.value = freq;
        const start = audio.currentTime + at;
        gain.gain.setValueAtTime(0.25, start);
        gain.gain.exponentialRampToValueAtTime(0.001, start + length);
        osc.connect(gain).connect(audio.destination);
        osc.start(start);
        osc.stop(start + length + 0.02);
      }
    } catch (e) { /* no audio on this device: vibration and colour still tell */ }
    if (navigator.vibrate) navigator.vibrate(kind === "ok" ? 80 : [200, 80, 200]);
  }

  function message(target, text, kind) {
    const node = $(target);
    node.textContent = text || "";
    node.className = "msg" + (kind ? " " + kind : "");
  }

  // --- API -----------------------------------------------------------------------------

  class ApiFailure extends Error {
    constructor(status, code, text, details) {
      super(text);
      this.status = status; this.code = code; this.details = details || {};
    }
  }

  async function api(method, path, options) {
    options = options || {};
    const headers = Object.assign({ "X-Requested-With": "cangyun-pda" }, options.headers || {});
    let body = options.body;
    if (options.json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(options.json);
    }
    let response;
    try {
      response = await fetch(path, { method, headers, body, credentials: "same-origin", cache: "no-store" });
    } catch (e) {
      throw new ApiFailure(0, "network", t("network"));
    }
    if (response.status === 204) return null;
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    if (!response.ok) {
      const err = (data && data.error) || {};
      const failure = new ApiFailure(response.status, err.code || "http_" + response.status,
        err.message || response.statusText, err.details);
      if (response.status === 401 && !options.anonymous) sessionEnded(failure);
      throw failure;
    }
    return data;
  }

  function explain(failure) {
    const code = failure.code;
    const table = window.PDA_TEXT[lang];
    if (code === "account_locked") {
      return t("account_locked", { minutes: Math.ceil((failure.details.retry_after_s || 900) / 60) });
    }
    const details = failure.details || {};
    if (code === "insufficient_stock" && Number.isInteger(details.available)) {
      const where = details.location === "" ? t("dock")
        : details.location === "*" ? t("all_bins") : details.location;
      return t("short_stock", { where, available: details.available, requested: details.requested });
    }
    if (code === "cannot_undo" && table["undo_" + details.reason] !== undefined) {
      return t("undo_" + details.reason, { type: t(details.type || "") });
    }
    if ((code === "invalid_field" || code === "missing_field")
        && table["field_" + details.field] !== undefined) {
      return t(code + "_named", { field: t("field_" + details.field), message: failure.message });
    }
    if (["invalid_field", "insufficient_stock", "cannot_undo", "missing_field"].includes(code)) {
      return t(code, { message: failure.message });
    }
    if (table[code] !== undefined) return t(code);
    return failure.message || t("internal_error");
  }

  // --- screens -------------------------------------------------------------------------

  function show(screen) {
    for (const node of document.querySelectorAll(".screen")) node.hidden = node.id !== "screen-" + screen;
    $("status").hidden = screen === "login";
    if (screen !== "flow") stopCamera();
    state.screen = screen === "login" ? state.screen : screen;
    save();
  }

  function translatePage() {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
    for (const node of document.querySelectorAll("[data-i18n-title]")) node.title = t(node.dataset.i18nTitle);
    $("scan-input").placeholder = lang === "zh" ? "扫描或输入条码" : "Scan or type a code";
  }

  function switchLanguage() {
    lang = lang === "zh" ? "en" : "zh";
    localStorage.setItem(LANG_KEY, lang);
    translatePage();
    if (state.operator) $("menu-operator").textContent = t("operator", { name: state.operatorName });
    if (state.screen === "flow" && state.operator) renderFlow();
    if (state.screen === "history" && state.operator) openHistory();
    refreshStatus();
  }

  function sessionEnded(failure) {
    stopCamera();
    stopStatus();
    const keep = state; // the task in progress survives a new login by the same operator
    keep.screen = keep.screen || "menu";
    save();
    show("login");
    message("login-message", explain(failure), "error");
    feedback("error");
  }

  // --- login ---------------------------------------------------------------------------

  async function onLogin(event) {
    event.preventDefault();
    const username = $("login-user").value.trim();
    const password = $("login-password").value;
    if (!username || !password) {
      message("login-message", t("missing_credentials"), "error");
      feedback("error");
      return;
    }
    $("login-form").querySelector("button").disabled = true;
    try {
      const body = await api("POST", "/api/v1/auth/login", { json: { username, password }, anonymous: true });
      $("login-password").value = "";
      message("login-message", "");
      localStorage.setItem("cangyun.pda.user", body.operator.username);
      loggedIn(body.operator);
    } catch (failure) {
      message("login-message", explain(failure), "error");
      feedback("error");
    } finally {
      $("login-form").querySelector("button").disabled = false;
    }
  }

  function loggedIn(operator) {
    if (state.operator && state.operator !== operator.username) state = {};
    state.operator = operator.username;
    state.operatorName = operator.name;
    save();
    $("menu-operator").textContent = t("operator", { name: operator.name });
    startStatus();
    if (state.screen === "flow" && state.flow) {
      show("flow");
      renderFlow();
      if (state.flow === "receive") loadCustomers();
    }
    else if (state.screen === "history") openHistory();
    else show("menu");
  }

  async function onLogout() {
    try { await api("POST", "/api/v1/auth/logout", { anonymous: true }); } catch (e) { /* offline: cookie expires */ }
    state = {};
    save();
    stopStatus();
    show("login");
    $("login-user").value = localStorage.getItem("cangyun.pda.user") || "";
  }

  // --- status bar ----------------------------------------------------------------------

  function startStatus() {
    stopStatus();
    refreshStatus();
    statusTimer = setInterval(refreshStatus, STATUS_INTERVAL_MS);
  }
  function stopStatus() { if (statusTimer) clearInterval(statusTimer); statusTimer = null; }

  async function refreshStatus() {
    if (!state.operator) return;
    const bar = $("status");
    let status;
    try {
      status = await api("GET", "/api/v1/sync/status");
    } catch (failure) {
      if (failure.status === 401) return;
      bar.className = "status offline";
      bar.dataset.online = "false";
      $("status-link").textContent = t("edge_unreachable");
      $("status-backlog").textContent = "";
      $("status-licence").textContent = "";
      return;
    }
    state.licence = status.licence;
    bar.dataset.online = String(status.online);
    bar.dataset.backlog = String(status.backlog);
    let link = t("online");
    if (!status.online) {
      link = status.offline_since ? t("offline_since", { time: clock(status.offline_since) }) : t("offline");
      if (!status.agent_running) link += " · " + t("agent_stopped");
    }
    $("status-link").textContent = link;
    $("status-backlog").textContent = status.backlog
      ? t("backlog_oldest", { n: status.backlog, age: ago(status.oldest_unacked_age_s) })
      : t("synced");
    const lic = status.licence || {};
    let licText = t("lic_" + lic.state);
    if (lic.state === "grace") licText = t("lic_grace", { days: lic.days_left });
    if (lic.state === "trial") licText = t("lic_trial", { days: lic.days_left });
    if (lic.state === "valid" && lic.inbound_allowed === false) licText = t("lic_quota");
    $("status-licence").textContent = t("licence", { state: licText });
    // The trial receives goods (a new box records before its first licence): not a warning.
    const licenceBad = !["valid", "trial"].includes(lic.state) || lic.inbound_allowed === false;
    bar.className = "status " + (status.online ? "online" : "offline") + (licenceBad ? " warn-licence" : "");
  }

  // --- flows ---------------------------------------------------------------------------

  function startFlow(flow) {
    state.flow = flow;
    resetItem();
    show("flow");
    renderFlow();
    if (flow === "receive") loadCustomers();
  }

  function resetItem() {
    state.step = FLOWS[state.flow].steps[0];
    state.item = null;
    state.location = null;
    state.form = {};
    state.key = null;
    state.done = null;
    state.stock = null;
    save();
  }

  function stepText() {
    const step = state.step;
    if (step === "item") return t(state.flow === "ship" ? "step_item_ship" : "step_item");
    if (step === "location") return t("step_location_" + state.flow);
    if (step === "lookup") return t("step_lookup");
    if (step === "done") return t("step_done");
    return t("step_confirm");
  }

  function renderFlow() {
    $("flow-title").textContent = t(state.flow);
    $("flow-step").textContent = stepText();
    const confirming = state.step === "confirm";
    $("confirm-form").hidden = !confirming;
    message("confirm-message", "", null);
    $("next").hidden = state.step !== "done";
    // On the confirm and done screens the form matters; the scan field stays for a rescan.
    $("camera-start").parentElement.hidden = confirming || state.step === "done";
    for (const label of $("confirm-form").querySelectorAll("[data-field]")) {
      label.hidden = !FLOWS[state.flow].fields.includes(label.dataset.field);
    }
    if (confirming) {
      const form = state.form || {};
      $("customer-input").value = form.customer || "";
      $("qty-input").value = form.qty || "";
      $("weight-input").value = form.weight || "";
      $("location-input").value = form.location || "";
    }
    $("confirm").disabled = false;
    renderCard();
    focusScan();
  }

  function focusScan() {
    const input = $("scan-input");
    if (!$("screen-flow").hidden && document.activeElement !== input &&
        !["qty-input", "weight-input", "customer-input", "location-input"].includes(document.activeElement?.id)) {
      input.focus({ preventScroll: true });
    }
  }

  // The result card: what was scanned (or recorded), with warnings and conflicts.
  function renderCard() {
    const card = $("result-card");
    card.replaceChildren();
    card.className = "card";
    if (state.done) {
      const m = state.done;
      card.classList.add("ok");
      card.append(el("h3", {}, "✓ " + t(m.reverses ? "done_undo" : "done_" + m.type)));
      card.append(fieldList([
        ["gtin", m.gtin], ["lot", m.lot], ["expiry_date", m.expiry_date], ["sscc", m.sscc],
        ["qty", pieces(m.qty)], ["weight_kg", kg(m.weight_kg)], ["customer", m.customer],
        ["location", m.type === "receive" || m.location ? place(m.location) : null],
        ["to_location", m.to_location],
      ]));
      card.append(el("p", { className: "meta" }, t("movement_no", { seq: m.seq }), " · ",
        m.synced ? t("synced_one") : t("waiting_sync")));
      card.hidden = false;
      return;
    }
    const item = state.item;
    if (!item) { card.hidden = true; return; }
    const f = item.fields || {};
    card.append(el("h3", {}, t("scanned") + (f.product_name ? " · " + f.product_name : "")));
    const rows = [["gtin", f.gtin], ["lot", f.lot], ["expiry_date", f.expiry_date],
      ["production_date", f.production_date], ["net_weight_kg", kg(f.net_weight_kg)],
      ["quantity", pieces(f.quantity)], ["sscc", f.sscc], ["owner", f.owner]];
    if (state.location) rows.push([state.flow === "putaway" ? "to_location" : "location", state.location]);
    card.append(fieldList(rows));
    for (const warning of expiryWarnings(f.expiry_date)) card.append(el("p", { className: "warn" }, warning));
    if (item.conflicts && item.conflicts.length) {
      card.append(el("p", { className: "conflict" }, t("conflicts")));
      for (const c of item.conflicts) {
        card.append(el("p", { className: "conflict" }, t("conflict_line",
          { field: t("f_" + c.field), barcode: c.barcode, ocr: c.ocr })));
      }
    }
    if (state.stock) card.append(stockTable(state.stock));
    card.hidden = false;
  }

  function fieldList(rows) {
    const dl = el("dl");
    for (const [name, value] of rows) {
      if (value === null || value === undefined || value === "") continue;
      dl.append(el("dt", {}, t("f_" + name)), el("dd", { "data-field": name }, value));
    }
    return dl;
  }

  function expiryWarnings(expiry) {
    if (!expiry) return [];
    const today = new Date();
    const todayText = today.getFullYear() + "-" + String(today.getMonth() + 1).padStart(2, "0") +
      "-" + String(today.getDate()).padStart(2, "0");
    if (expiry < todayText) return [t("expired_lot", { date: expiry })];
    const days = (new Date(expiry) - new Date(todayText)) / 86400000;
    return days <= EXPIRY_WARN_DAYS ? [t("expiring_lot", { date: expiry })] : [];
  }

  function stockTable(items) {
    if (!items.length) return el("p", { className: "meta" }, t("no_stock"));
    const total = items.reduce((sum, s) => sum + s.qty, 0);
    return el("div", {},
      el("p", { className: "meta" }, t("stock_here") + " · " + t("stock_total", { qty: total })),
      el("table", {}, el("tbody", {}, items.slice(0, 20).map((s) => el("tr", {},
        el("td", {}, place(s.location)), el("td", {}, s.customer || "-"), el("td", {}, s.lot || "-"),
        el("td", {}, String(s.qty)))))));
  }

  // --- scanning ------------------------------------------------------------------------

  // Scans are handled one after the other: a second label scanned while the first is
  // still being identified must land on the step the first one leads to.
  let scanQueue = Promise.resolve();
  function queueCode(raw) {
    scanQueue = scanQueue.then(() => submitCode(raw));
    return scanQueue;
  }

  async function submitCode(raw) {
    const code = raw.replace(/[\r\n]+$/, "");
    if (!code.trim()) return;
    message("flow-message", t("scanning"), "info");
    try {
      const result = await api("POST", "/api/v1/scans", { json: { code } });
      await handleScan(normalizeCode(result), null);
    } catch (failure) {
      fail(failure);
    }
  }

  function normalizeCode(result) {
    return { kind: result.code.kind, value: result.code.value, fields: result.fields || {},
      conflicts: [], barcodes: [] };
  }

  function normalizeImage(result) {
    const first = (result.barcodes || [])[0];
    return { kind: first ? (first.gs1 ? "gs1" : "barcode") : "none", value: first ? first.content : "",
      fields: result.fields || {}, conflicts: result.conflicts || [], barcodes: result.barcodes || [] };
  }

  function fail(failure, extra) {
    const text = failure instanceof ApiFailure ? explain(failure) : String(failure.message || failure);
    message("flow-message", text + (extra ? " " + extra : ""), "error");
    // On the confirm screen the operator looks at the button, not at the top of the page.
    message("confirm-message", state.step === "confirm" ? text : "", "error");
    feedback("error");
  }

  async function handleScan(scan, image) {
    const step = state.step === "confirm" || state.step === "done" ? FLOWS[state.flow].steps[0] : state.step;
    if (state.step === "confirm" || state.step === "done") resetItem();
    if (step === "lookup") return lookup(scan);
    if (step === "location") return takeLocation(scan);
    return takeItem(scan, image);
  }

  async function takeItem(scan, image) {
    const f = Object.assign({}, scan.fields);
    if (!f.gtin && !f.sscc) {
      if (scan.kind === "none") throw new ApiFailure(0, "no_code_found", t("no_code_found"));
      const why = scan.kind === "text" ? t("unknown_code", { code: scan.value.slice(0, 40) }) : t("not_goods");
      message("flow-message", why, "error");
      feedback("error");
      return;
    }
    if (!f.gtin) {
      if (state.flow === "receive") { message("flow-message", t("sscc_only"), "error"); feedback("error"); return; }
      // A pallet label with only its SSCC: what is on it comes from its receipt.
      const found = await api("GET", "/api/v1/movements?type=receive&limit=1&sscc=" + encodeURIComponent(f.sscc));
      const receipt = found.items[0];
      if (!receipt) { message("flow-message", t("sscc_unknown"), "error"); feedback("error"); return; }
      for (const name of ["gtin", "sku", "lot", "expiry_date", "customer"]) if (receipt[name]) f[name] = receipt[name];
      f.quantity = f.quantity || receipt.qty;
    }
    state.item = { fields: f, conflicts: scan.conflicts, kind: scan.kind, value: scan.value };
    state.form = {
      customer: f.owner || f.customer || "",
      qty: f.quantity ? String(f.quantity) : "1",
      weight: f.net_weight_kg !== undefined && f.net_weight_kg !== null ? String(f.net_weight_kg) : "",
      location: "",
    };
    state.stock = null;
    if (state.flow !== "receive") {
      state.stock = await stockOf(f);
      const owners = [...new Set(state.stock.map((s) => s.customer).filter(Boolean))];
      if (owners.length === 1 && !state.form.customer) state.form.customer = owners[0];
    }
    advance();
    message("flow-message", "", null);
    feedback("ok");
    if (image && state.flow === "receive") readLabelText(image);
  }

  async function stockOf(fields) {
    const query = new URLSearchParams();
    if (fields.gtin) query.set("gtin", fields.gtin);
    if (fields.lot) query.set("lot", fields.lot);
    const page = await api("GET", "/api/v1/stock?" + query);
    return page.items;
  }

  // After a camera or photo read, OCR fills what the barcode lacks (weight, count, owner)
  // and shows where print and barcode disagree. Only when the licence includes OCR.
  async function readLabelText(image) {
    const lic = state.licence;
    if (lic && lic.ocr_allowed === false) { message("flow-message", t("ocr_off"), "info"); return; }
    const key = state.key;
    message("flow-message", t("reading_text"), "info");
    try {
      const result = await api("POST", "/api/v1/scans?ocr=1", { body: image, headers: { "Content-Type": "image/jpeg" } });
      if (state.key !== key || !state.item) return; // the operator moved on meanwhile
      const merged = Object.assign({}, result.fields, state.item.fields);
      state.item.fields = merged;
      state.item.conflicts = result.conflicts || [];
      const form = state.form;
      if (!form.customer && merged.owner) form.customer = merged.owner;
      if (form.qty === "1" && merged.quantity) form.qty = String(merged.quantity);
      if (!form.weight && merged.net_weight_kg) form.weight = String(merged.net_weight_kg);
      save();
      if (state.step === "confirm") {
        if (!$("customer-input").value) $("customer-input").value = form.customer;
        if ($("qty-input").value === "1") $("qty-input").value = form.qty;
        if (!$("weight-input").value) $("weight-input").value = form.weight;
      }
      renderCard();
      message("flow-message", "", null);
    } catch (failure) {
      if (failure.code === "feature_not_in_licence") message("flow-message", t("ocr_off"), "info");
      else message("flow-message", explain(failure), "info"); // the barcode read still stands
    }
  }

  function takeLocation(scan) {
    if (scan.fields.gtin || scan.fields.sscc) {
      message("flow-message", t("goods_not_location"), "error");
      feedback("error");
      return;
    }
    const location = (scan.value || "").trim();
    if (!location || location.length > 64) {
      message("flow-message", t(location ? "location_too_long" : "missing_code"), "error");
      feedback("error");
      return;
    }
    state.location = location;
    advance();
    message("flow-message", t("location_set", { loc: location }), "ok");
    feedback("ok");
  }

  function advance() {
    const steps = FLOWS[state.flow].steps;
    state.step = steps[Math.min(steps.indexOf(state.step) + 1, steps.length - 1)];
    if (state.step === "confirm") state.key = newKey(); // one key per confirm screen
    save();
    renderFlow();
  }

  async function lookup(scan) {
    const f = scan.fields;
    state.item = { fields: f, conflicts: scan.conflicts, kind: scan.kind, value: scan.value };
    let stock;
    if (f.gtin || f.sscc) {
      let fields = f;
      if (!f.gtin) {
        const found = await api("GET", "/api/v1/movements?limit=1&sscc=" + encodeURIComponent(f.sscc));
        fields = found.items[0] || {};
      }
      stock = fields.gtin ? await stockOf(fields) : [];
    } else if (scan.kind === "none") {
      throw new ApiFailure(0, "no_code_found", t("no_code_found"));
    } else {
      stock = (await api("GET", "/api/v1/stock?location=" + encodeURIComponent(scan.value))).items;
      state.item.fields = { kind: t("kind_" + scan.kind), value: scan.value };
    }
    state.stock = stock;
    save();
    renderLookupCard(scan);
    message("flow-message", "", null);
    feedback("ok");
  }

  function renderLookupCard(scan) {
    renderCard();
    const card = $("result-card");
    const title = card.querySelector("h3");
    title.textContent = t("kind_" + scan.kind) || scan.kind;
    if (!(scan.fields.gtin || scan.fields.sscc)) {
      card.querySelector("dl").replaceWith(fieldList([["value", scan.value]]));
    }
  }

  // --- wedge scanner -------------------------------------------------------------------

  const wedge = { last: 0, gaps: [], timer: null };

  function onScanKey(event) {
    const now = performance.now();
    const input = event.target;
    if (event.key === "Enter") {
      event.preventDefault();
      clearTimeout(wedge.timer);
      const value = input.value;
      input.value = "";
      wedge.gaps = [];
      queueCode(value);
      return;
    }
    // Scanners set to send GS as Ctrl+] (ASCII 29) type no character: put it in ourselves.
    if (event.ctrlKey && (event.key === "]" || event.code === "BracketRight")) {
      event.preventDefault();
      insertAtCursor(input, GS);
    }
    if (event.key.length === 1 || event.key === "Unidentified") {
      wedge.gaps.push(wedge.last ? now - wedge.last : 0);
      wedge.last = now;
      clearTimeout(wedge.timer);
      wedge.timer = setTimeout(() => endBurst(input), BURST_END_MS);
    }
  }

  // Some scanners are set up without a trailing Enter: a fast burst that stops is a scan.
  function endBurst(input) {
    const gaps = wedge.gaps.slice(1);
    const fast = gaps.length + 1 >= BURST_MIN_CHARS && gaps.every((g) => g < BURST_GAP_MS);
    wedge.gaps = [];
    wedge.last = 0;
    if (fast && input.value.length >= BURST_MIN_CHARS) {
      const value = input.value;
      input.value = "";
      queueCode(value);
    }
  }

  function insertAtCursor(input, text) {
    const start = input.selectionStart ?? input.value.length;
    const end = input.selectionEnd ?? input.value.length;
    input.value = input.value.slice(0, start) + text + input.value.slice(end);
    input.selectionStart = input.selectionEnd = start + text.length;
  }

  function toggleKeyboard() {
    const input = $("scan-input");
    input.inputMode = input.inputMode === "none" ? "text" : "none";
    input.blur();
    input.focus();
  }

  // --- camera --------------------------------------------------------------------------

  async function startCamera() {
    if (camera) return;
    if (!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia)) {
      const https = document.body.dataset.httpsUrl;
      message("flow-message", t("camera_unavailable"), "error");
      if (https) $("flow-message").append(" ", el("a", { href: https }, t("open_https")));
      feedback("error");
      return;
    }
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: false,
        video: { facingMode: { ideal: "environment" }, width: { ideal: 1280 }, height: { ideal: 720 } },
      });
    } catch (e) {
      message("flow-message", t(e.name === "NotAllowedError" ? "camera_denied" : "camera_unavailable"), "error");
      feedback("error");
      return;
    }
    const video = $("camera-video");
    video.srcObject = stream;
    $("camera").hidden = false;
    try { await video.play(); } catch (e) { /* autoplay of a muted stream is allowed */ }
    const track = stream.getVideoTracks()[0];
    const caps = track.getCapabilities ? track.getCapabilities() : {};
    camera = { stream, track, timer: null, torch: false };
    $("torch").hidden = !caps.torch;
    $("torch").setAttribute("aria-pressed", "false");
    message("flow-message", t("camera_looking"), "info");
    camera.timer = setTimeout(grabFrame, FRAME_INTERVAL_MS);
  }

  function stopCamera() {
    if (!camera) return;
    clearTimeout(camera.timer);
    for (const track of camera.stream.getTracks()) track.stop();
    camera = null;
    $("camera-video").srcObject = null;
    $("camera").hidden = true;
  }

  async function toggleTorch() {
    if (!camera) return;
    camera.torch = !camera.torch;
    try {
      await camera.track.applyConstraints({ advanced: [{ torch: camera.torch }] });
      $("torch").setAttribute("aria-pressed", String(camera.torch));
    } catch (e) { $("torch").hidden = true; }
  }

  async function grabFrame() {
    const current = camera;
    if (!current) return;
    const video = $("camera-video");
    if (!video.videoWidth) { current.timer = setTimeout(grabFrame, FRAME_INTERVAL_MS); return; }
    const blob = await toJpeg(video, video.videoWidth, video.videoHeight, FRAME_LONG_SIDE, 0.85);
    let result = null;
    try {
      result = await api("POST", "/api/v1/scans", { body: blob, headers: { "Content-Type": "image/jpeg" } });
    } catch (failure) {
      if (failure.status === 401) return;
      message("flow-message", explain(failure), "error");
    }
    if (camera !== current) return; // stopped meanwhile
    const scan = result && normalizeImage(result);
    const wanted = scan && (state.step === "location" ? scan.barcodes.length > 0 : scan.fields.gtin || scan.fields.sscc || (state.step === "lookup" && scan.barcodes.length));
    if (!wanted) { current.timer = setTimeout(grabFrame, FRAME_INTERVAL_MS); return; }
    stopCamera();
    if (state.step === "location" && !scan.fields.gtin && !scan.fields.sscc) scan.kind = "text";
    try { await handleScan(scan, blob); } catch (failure) { fail(failure); }
  }

  function toJpeg(source, width, height, longSide, quality) {
    const scale = Math.min(1, longSide / Math.max(width, height));
    const canvas = $("frame");
    canvas.width = Math.round(width * scale);
    canvas.height = Math.round(height * scale);
    canvas.getContext("2d").drawImage(source, 0, 0, canvas.width, canvas.height);
    return new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", quality));
  }

  async function onPhoto(event) {
    const input = event.target;
    const file = input.files && input.files[0];
    input.value = "";
    if (!file) return;
    if (file.size > PHOTO_MAX_MB * 1024 * 1024) {
      message("flow-message", t("photo_too_large", { size: Math.round(file.size / 1048576), max: PHOTO_MAX_MB }), "error");
      feedback("error");
      return;
    }
    message("flow-message", t("scanning"), "info");
    let upload = file;
    let type = file.type || "application/octet-stream";
    try {
      const bitmap = await createImageBitmap(file);
      upload = await toJpeg(bitmap, bitmap.width, bitmap.height, PHOTO_LONG_SIDE, 0.9);
      type = "image/jpeg";
      bitmap.close();
    } catch (e) { /* the browser cannot read it: let the edge say what is wrong with it */ }
    const ocr = state.flow === "receive" && state.step === "item" && !(state.licence && state.licence.ocr_allowed === false);
    try {
      const result = await api("POST", "/api/v1/scans?mode=still" + (ocr ? "&ocr=1" : ""), { body: upload, headers: { "Content-Type": type } });
      const scan = normalizeImage(result);
      if (state.step === "location" && !scan.fields.gtin && !scan.fields.sscc && scan.barcodes.length) scan.kind = "text";
      await handleScan(scan, ocr ? null : upload);
    } catch (failure) {
      fail(failure);
    }
  }

  // --- confirm -------------------------------------------------------------------------

  async function onConfirm(event) {
    event.preventDefault();
    const button = $("confirm");
    if (button.disabled) return;
    const form = {
      customer: $("customer-input").value.trim(),
      qty: $("qty-input").value.trim(),
      weight: $("weight-input").value.trim(),
      location: $("location-input").value.trim(),
    };
    state.form = form;
    save();
    const qty = Number(form.qty);
    if (!/^\d+$/.test(form.qty) || !Number.isInteger(qty) || qty < 1 || qty > MAX_QTY) {
      fail(new ApiFailure(0, "qty_range", t("qty_range")));
      $("qty-input").focus();
      return;
    }
    const weight = form.weight === "" ? null : Number(form.weight);
    const fields = FLOWS[state.flow].fields;
    if (fields.includes("weight") && weight !== null && !(weight >= 0 && weight <= MAX_WEIGHT_KG)) {
      fail(new ApiFailure(0, "invalid_weight", t("invalid_weight")));
      return;
    }
    const f = state.item.fields;
    const movement = { type: state.flow, qty };
    for (const name of ["gtin", "sku", "lot", "expiry_date"]) if (f[name]) movement[name] = f[name];
    if (form.customer) movement.customer = form.customer;
    if (state.flow === "receive") {
      if (f.sscc) movement.sscc = f.sscc;
      if (weight !== null) movement.weight_kg = weight;
      if (form.location) movement.location = form.location;
    } else if (state.flow === "putaway") {
      movement.to_location = state.location;
    } else if (state.flow === "pick") {
      movement.location = state.location;
    }
    button.disabled = true; // a second tap waits; the Idempotency-Key covers a retry anyway
    message("flow-message", "", null);
    message("confirm-message", "", null);
    try {
      const recorded = await api("POST", "/api/v1/movements", { json: movement, headers: { "Idempotency-Key": state.key } });
      state.done = recorded;
      state.step = "done";
      state.key = null;
      save();
      renderFlow();
      feedback("ok");
      refreshStatus();
    } catch (failure) {
      fail(failure);
      button.disabled = false;
    }
  }

  function onNext() {
    resetItem();
    renderFlow();
    message("flow-message", "", null);
  }

  async function loadCustomers() {
    try {
      const page = await api("GET", "/api/v1/customers");
      $("customer-list").replaceChildren(...page.items.map((c) => el("option", { value: c.customer })));
    } catch (e) { /* the list is a convenience */ }
  }

  // --- history and undo ----------------------------------------------------------------

  async function openHistory() {
    show("history");
    message("history-message", t("loading"), "info");
    let page;
    try {
      page = await api("GET", "/api/v1/movements?limit=30&operator=" + encodeURIComponent(state.operator));
    } catch (failure) {
      message("history-message", explain(failure), "error");
      return;
    }
    const undone = new Set(page.items.filter((m) => m.reverses).map((m) => m.reverses));
    const list = $("history-list");
    list.replaceChildren(...page.items.map((m) => historyRow(m, undone.has(m.id))));
    message("history-message", page.items.length ? "" : t("history_empty"), "info");
  }

  function historyRow(m, undone) {
    const what = [t(m.reverses ? "is_undo" : m.type) + (m.reverses ? " · " + t(m.type) : ""),
      m.gtin || m.sku, m.lot, pieces(m.qty)]
      .filter(Boolean).join(" · ");
    const where = ["putaway", "transfer", "pick"].includes(m.type)
      ? place(m.location) + " → " + place(m.to_location || (m.type === "pick" ? "STAGING" : null))
      : place(m.location);
    const meta = [clock(m.occurred_at), where, m.customer, m.synced ? t("synced_one") : t("waiting_sync"),
      undone ? t("undone") : null].filter(Boolean).join(" · ");
    const item = el("li", { className: undone ? "undone" : "", "data-id": m.id },
      el("span", { className: "what" }, what), el("span", { className: "meta" }, meta));
    if (!m.reverses && !undone && m.type !== "count") {
      const button = el("button", { type: "button", className: "danger", "data-testid": "undo" }, t("undo"));
      button.addEventListener("click", () => undo(m, button));
      item.append(button);
    }
    return item;
  }

  async function undo(movement, button) {
    // Two taps: the first arms the button, the second undoes (no modal dialog on a PDA).
    if (button.dataset.armed !== "1") {
      button.dataset.armed = "1";
      button.textContent = t("undo_confirm");
      return;
    }
    button.disabled = true;
    try {
      await api("POST", "/api/v1/movements/" + encodeURIComponent(movement.id) + "/undo");
      feedback("ok");
      await openHistory();
      message("history-message", t("done_undo"), "ok");
      refreshStatus();
    } catch (failure) {
      message("history-message", explain(failure), "error");
      feedback("error");
      button.disabled = false;
    }
  }

  // --- start ---------------------------------------------------------------------------

  function wire() {
    $("login-form").addEventListener("submit", onLogin);
    for (const button of document.querySelectorAll(".lang")) button.addEventListener("click", switchLanguage);
    for (const tile of document.querySelectorAll(".tile")) {
      tile.addEventListener("click", () => (tile.dataset.flow ? startFlow(tile.dataset.flow) : openHistory()));
    }
    for (const back of document.querySelectorAll(".back")) {
      back.addEventListener("click", () => { stopCamera(); state.flow = null; show("menu"); });
    }
    $("logout").addEventListener("click", onLogout);
    $("scan-input").addEventListener("keydown", onScanKey);
    $("keyboard").addEventListener("click", toggleKeyboard);
    $("camera-start").addEventListener("click", startCamera);
    $("camera-stop").addEventListener("click", () => { stopCamera(); message("flow-message", "", null); });
    $("torch").addEventListener("click", toggleTorch);
    $("photo-input").addEventListener("change", onPhoto);
    $("confirm-form").addEventListener("submit", onConfirm);
    $("next").addEventListener("click", onNext);
    for (const id of ["customer-input", "qty-input", "weight-input", "location-input"]) {
      $(id).addEventListener("input", () => { state.form = state.form || {}; state.form[id.split("-")[0]] = $(id).value; save(); });
    }
    // Taps on empty space give the focus back to the scan field, where the wedge types.
    document.addEventListener("click", (event) => {
      if (!event.target.closest("input, button, label, a, select, textarea")) focusScan();
    });
  }

  async function start() {
    translatePage();
    wire();
    $("login-user").value = localStorage.getItem("cangyun.pda.user") || "";
    let session = null;
    try {
      session = await api("GET", "/api/v1/auth/session", { anonymous: true });
    } catch (failure) {
      if (failure.code === "session_expired") message("login-message", explain(failure), "error");
    }
    if (session && session.operator) loggedIn(session.operator);
    else { show("login"); ($("login-user").value ? $("login-password") : $("login-user")).focus(); }
    document.body.dataset.ready = "1";
  }

  start();
})();
