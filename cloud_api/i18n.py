"""Console texts in Chinese (default) and English. One table, looked up by key."""

from __future__ import annotations

LANGUAGES = ("zh", "en")
DEFAULT = "zh"

TEXTS: dict[str, tuple[str, str]] = {
    # key: (中文, English)
    "app": ("仓运通 控制台", "cangyun console"),
    "login": ("登录", "Log in"),
    "logout": ("退出", "Log out"),
    "email": ("邮箱", "Email"),
    "password": ("密码", "Password"),
    "code": ("验证码", "Code"),
    "two_step_sent": ("验证码已发送到您的邮箱", "A code was sent to your email"),
    "wrong_login": ("邮箱或密码错误", "Wrong email or password"),
    "locked": (
        "失败次数过多，请 {seconds} 秒后再试",
        "Too many failures; try again in {seconds} s",
    ),
    "dashboard": ("概览", "Dashboard"),
    "customers": ("货主", "Customers"),
    "warehouses": ("仓库", "Warehouses"),
    "devices": ("设备", "Devices"),
    "users": ("用户", "Users"),
    "security_policy": ("安全策略", "Security policy"),
    "audit": ("审计日志", "Audit log"),
    "movements_today": ("今日作业", "Movements today"),
    "devices_online": ("在线设备", "Devices online"),
    "stock_lines": ("库存行", "Stock lines"),
    "movements_14d": ("近 14 天作业量", "Movements, last 14 days"),
    "recent_movements": ("最近作业", "Recent movements"),
    "type": ("类型", "Type"),
    "goods": ("货品", "Goods"),
    "lot": ("批号", "Lot"),
    "qty": ("数量", "Qty"),
    "weight": ("重量(kg)", "Weight (kg)"),
    "customer": ("货主", "Customer"),
    "warehouse": ("仓库", "Warehouse"),
    "device": ("设备", "Device"),
    "time": ("时间", "Time"),
    "online": ("在线", "online"),
    "offline": ("离线", "offline"),
    "lag": ("待同步", "Lag"),
    "last_seen": ("最后在线", "Last seen"),
    "role": ("角色", "Role"),
    "name": ("名称", "Name"),
    "phone": ("电话", "Phone"),
    "status": ("状态", "Status"),
    "active": ("启用", "active"),
    "disabled": ("停用", "disabled"),
    "add_user": ("添加用户", "Add user"),
    "save": ("保存", "Save"),
    "saved": ("已保存", "Saved"),
    "search": ("搜索", "Search"),
    "actor": ("操作人", "Actor"),
    "action": ("操作", "Action"),
    "target": ("对象", "Target"),
    "code_label": ("编码", "Code"),
    "rate_card": ("费率", "Rate card"),
    "storage_rate": ("仓储费 元/吨·天", "Storage, yuan/tonne-day"),
    "handling_in": ("入库费 元/件", "Handling in, yuan/piece"),
    "handling_out": ("出库费 元/件", "Handling out, yuan/piece"),
    "minimum": ("月最低收费", "Monthly minimum"),
    "contacts": ("联系人", "Contacts"),
    "timeline": ("动态", "Timeline"),
    "zones": ("库区", "Zones"),
    "locations": ("库位", "Locations"),
    "labels_pdf": ("打印库位标签", "Print location labels"),
    "min_length": ("最短长度", "Minimum length"),
    "require_upper": ("需要大写字母", "Upper-case letter"),
    "require_lower": ("需要小写字母", "Lower-case letter"),
    "require_digit": ("需要数字", "Digit"),
    "require_symbol": ("需要符号", "Symbol"),
    "rotation_days": ("密码有效期(天, 0=不过期)", "Rotation (days, 0 = never)"),
    "lockout_threshold": ("连续失败锁定次数", "Lock after failed logins"),
    "lockout_minutes": ("锁定分钟数", "Lock minutes"),
    "session_minutes": ("会话有效分钟数", "Session minutes"),
    "ip_allowlist": ("IP 白名单(每行一个, 空=不限)", "IP allow-list (one per line, empty = any)"),
    "two_step": ("两步登录(邮箱验证码)", "Two-step login (email code)"),
    "forbidden": ("没有权限", "Not allowed"),
    "not_found": ("未找到", "Not found"),
    "none": ("暂无", "None yet"),
    "language": ("English", "中文"),
}


def text(key: str, lang: str, **values: object) -> str:
    pair = TEXTS.get(key)
    if pair is None:
        return key
    chosen = pair[1] if lang == "en" else pair[0]
    return chosen.format(**values) if values else chosen
