#!/usr/bin/env bash
# The machine packages cangyun's suite and demo need, in one list: `make install` and CI both
# run this. As root it installs what is missing with apt-get; otherwise it prints the one
# command that would and exits 1, so `make` stops and names it instead of tests skipping later.
set -euo pipefail

need=()
command -v mosquitto >/dev/null 2>&1 || need+=(mosquitto)
# ZBar: the second-opinion 1D decoder (pyzbar loads libzbar.so at run time).
ldconfig -p 2>/dev/null | grep -q 'libzbar\.so' || need+=(libzbar0)
# CJK and Latin fonts: the rendered label test set and the PDF exports.
fc_has() { fc-list 2>/dev/null | grep -qi "$1"; }
fc_has "Noto Sans CJK" || need+=(fonts-noto-cjk)
fc_has "WenQuanYi Zen Hei" || need+=(fonts-wqy-zenhei)
fc_has "WenQuanYi Micro Hei" || need+=(fonts-wqy-microhei)
fc_has "DejaVu Sans" || need+=(fonts-dejavu-core)
command -v fc-list >/dev/null 2>&1 || need+=(fontconfig)
# Headless Chromium: every console and PDA page is tested in it.
command -v chromium >/dev/null 2>&1 || need+=(chromium)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)

((${#need[@]})) || exit 0
command="apt-get install -y --no-install-recommends ${need[*]}"
if [[ $(id -u) -ne 0 ]]; then
    echo "cangyun needs system packages: run  sudo apt-get update && sudo $command" >&2
    echo "(or set CANGYUN_SKIP_SYSTEM=1 to go on without them; the tests that need them then fail)" >&2
    [[ -n ${CANGYUN_SKIP_SYSTEM:-} ]] && exit 0
    exit 1
fi
echo "system-deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}"
