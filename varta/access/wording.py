"""The access journal in the reader's language (pure; no I/O).

A journal line is stored once, in the words it was written with (English, under the hash
chain: what a court checks). A reader sees it in Ukrainian or English: the action, the
result, the role, the object's kind and — for the details the system writes — the detail,
reworded by the patterns below. A detail no pattern knows is shown as written; names,
numbers, times and what people typed (camera names, request texts) are never translated.
"""

from __future__ import annotations

import json
import re

LANGS = ("uk", "en")

ACTIONS = {
    "session.login": ("вхід", "sign-in"),
    "session.logout": ("вихід", "sign-out"),
    "session.remote": ("віддалений сеанс", "remote session"),
    "session.direct": ("безпосередній сеанс", "on-site session"),
    "account.self": ("власний обліковий запис", "own account"),
    "live.view": ("перегляд наживо", "live view"),
    "camera.list": ("перелік камер", "camera list"),
    "camera.manage": ("керування камерами", "camera management"),
    "archive.search": ("пошук в архіві", "archive search"),
    "archive.play": ("перегляд архіву", "archive playback"),
    "archive.export": ("експорт архіву", "archive export"),
    "event.view": ("перегляд подій", "event view"),
    "event.handle": ("обробка тривоги", "alarm handling"),
    "incident.view": ("реєстр інцидентів", "incident register"),
    "incident.manage": ("ведення інцидентів", "incident management"),
    "hold.view": ("реєстр утримань", "hold register"),
    "hold.manage": ("утримання записів", "hold management"),
    "request.view": ("реєстр запитів", "request register"),
    "request.register": ("реєстрація запиту", "request registration"),
    "request.resolve": ("резолюція на запит", "request resolution"),
    "request.file": ("подання запиту онлайн", "on-line request filing"),
    "search.tracks": ("пошук за треками", "track search"),
    "ptz.control": ("керування поворотною камерою", "PTZ control"),
    "placement.view": ("аналіз розміщення камер", "camera placement analysis"),
    "placement.manage": ("підготовка пропозицій розміщення", "placement proposals drafted"),
    "placement.approve": ("затвердження розміщення", "placement approval"),
    "placement.review": ("погодження розміщення поліцією", "placement review by the police"),
    "lockdown.manage": ("режим блокування", "lockdown"),
    "lockdown.alert": ("тривога: автоматичне блокування", "alert feed lockdown"),
    "request.prepare": ("підготовка пакета", "package preparation"),
    "request.transfer": ("передача пакета", "package transfer"),
    "system.maintain": ("обслуговування системи", "system maintenance"),
    "system.view": ("стан системи", "system state"),
    "user.manage": ("керування користувачами", "user management"),
    "token.manage": ("ключі API", "API tokens"),
    "policy.manage": ("політика доступу", "access policy"),
    "journal.read": ("читання журналу", "journal reading"),
    "journal.cabinet": ("доступ до шафи сервера", "server cabinet access"),
}

RESULTS = {"ok": ("успішно", "ok"), "refused": ("відмовлено", "refused"), "failed": ("невдало", "failed"),
           "flagged": ("позначено", "flagged")}
ACCESS = {"direct": ("безпосередній", "direct"), "remote": ("віддалений", "remote")}
OBJECT_KINDS = {
    "camera": ("камера", "camera"), "user": ("користувач", "user"), "request": ("запит", "request"),
    "hold": ("утримання", "hold"), "incident": ("інцидент", "incident"), "node": ("вузол", "node"),
    "policy": ("політика", "policy"), "token": ("ключ API", "token"), "export": ("експорт", "export"),
    "subscription": ("підписка", "subscription"), "proposal": ("пропозиція розміщення", "placement proposal"),
    "lockdown-request": ("запит на блокування", "lockdown request"),
}
OBJECTS = {
    "journal": ("журнал", "journal"), "cameras": ("камери", "cameras"), "archive": ("архів", "archive"),
    "database": ("база даних", "database"), "cabinet": ("шафа сервера", "server cabinet"),
    "requests": ("запити", "requests"), "holds": ("утримання", "holds"), "incidents": ("інциденти", "incidents"),
    "tracks": ("треки камер", "tracks"), "addresses": ("перелік адрес", "address list"),
    "placement": ("розміщення камер", "camera placement"),
    "lockdown": ("режим блокування", "lockdown"), "secrets": ("ключ секретів", "secrets key"),
}
STAGES = {"full": "повний доступ", "password": "зміна одноразового пароля", "totp_enrol": "реєстрація другого фактора"}
_ACTIVITY = {"direct": "безпосередній доступ", "remote": "віддалений доступ",
             "restricted-zone workstation": "робоче місце обмеженої зони"}
_FORMATS = {"json": "перегляд", "csv": "звіт CSV", "pdf": "звіт PDF", "geojson": "GeoJSON"}
_PTZ = {"goto": "до передустановки", "set-preset": "збережено передустановку", "remove-preset": "видалено передустановку",
        "move": "поворот", "stop": "зупинка", "absolute": "у положення", "relative": "крок", "home": "додому",
        "release": "керування звільнено"}
_PLACEMENT = {"incidents": "події", "sites": "можливі місця", "zones": "заборонені зони", "sent": "надіслано",
              "agreed": "погоджено", "commented": "прокоментовано", "approved": "затверджено"}


def _plural(n: str, one: str, few: str, many: str) -> str:
    k = int(n)
    if k % 10 == 1 and k % 100 != 11:
        return one
    if 2 <= k % 10 <= 4 and not 12 <= k % 100 <= 14:
        return few
    return many


def _segments(m) -> str:
    return f"{m['n']} {_plural(m['n'], 'фрагмент', 'фрагменти', 'фрагментів')}"


# (pattern, Ukrainian) — the pattern matches the whole detail as the code writes it.
_DETAILS: list[tuple[re.Pattern, object]] = [(re.compile(p), uk) for p, uk in [
    (r"imported (?P<n>\d+) (?P<w>incidents|sites|zones) from (?P<f>.+)",
     lambda m: f"імпортовано {m['n']} ({_PLACEMENT[m['w']]}) з {m['f']}"),
    (r"import refused: (?P<why>.+)", lambda m: f"імпорт відхилено: {m['why']}"),
    (r"analysed (?P<a>\S+) – (?P<b>\S+): (?P<n>\d+) incidents, k (?P<k>\d+), radius (?P<r>\S+) m: "
     r"covered (?P<c0>\S+) → (?P<c1>\S+)",
     lambda m: f"проаналізовано {m['a']} – {m['b']}: подій {m['n']}, місць {m['k']}, радіус {m['r']} м: "
               f"охоплено {m['c0']} → {m['c1']}"),
    (r"ptz (?P<op>goto|set-preset|remove-preset|move|stop|absolute|relative|home|release)(?P<rest>.*)",
     lambda m: f"поворотна камера: {_PTZ[m['op']]}{m['rest']}"),
    (r"added by ONVIF from (?P<x>\S+): (?P<rest>.+)", lambda m: f"додано за ONVIF з {m['x']}: {m['rest']}"),
    (r"ONVIF discovery: (?P<n>\d+) devices?(?P<rest>.*)", lambda m: f"пошук ONVIF: пристроїв {m['n']}{m['rest']}"),
    (r"(?P<f>csv|pdf) ONVIF inventory \((?P<n>\d+) lines\)", lambda m: f"звіт {m['f'].upper()}: перелік пристроїв ONVIF ({m['n']} "
                                                           f"{_plural(m['n'], 'рядок', 'рядки', 'рядків')})"),
    (r"ONVIF add refused: (?P<why>.+)", lambda m: f"додавання за ONVIF відхилено: {m['why']}"),
    (r"proposal drafted: (?P<t>.+)", lambda m: f"пропозицію складено: {m['t']}"),
    (r"proposal (?P<s>sent|agreed|commented|approved)(?: to (?P<to>\S+))?(?:: (?P<t>.*))?",
     lambda m: f"пропозицію {_PLACEMENT[m['s']]}{' ' + m['to'] if m['to'] else ''}{': ' + m['t'] if m['t'] else ''}"),
    (r"proposal read(?: as (?P<f>pdf|geojson|csv))?",
     lambda m: "пропозицію переглянуто" + (f" ({_FORMATS.get(m['f'], m['f'].upper())})" if m['f'] else "")),
    (r"proposal not sent to this unit", "пропозицію надіслано не цьому підрозділу"),
    (r"(?P<a>restricted-zone workstation|direct|remote)(?P<f>; second factor)?; stage (?P<s>\w+)",
     lambda m: f"{_ACTIVITY[m['a']]}{'; другий фактор' if m['f'] else ''}; етап: {STAGES.get(m['s'], m['s'])}"),
    (r"wrong password \(failure (?P<n>\d+)(?:; locked until (?P<u>.+))?\)",
     lambda m: f"невірний пароль (спроба {m['n']}{'; заблоковано до ' + m['u'] if m['u'] else ''})"),
    (r"unknown login", "невідомий логін"),
    (r"account disabled", "обліковий запис вимкнено"),
    (r"attempt while locked until (?P<u>.+)", lambda m: f"спроба під час блокування (до {m['u']})"),
    (r"wrong second-factor code \(failure (?P<n>\d+)(?:; locked until (?P<u>.+))?\)",
     lambda m: f"невірний код другого фактора (спроба {m['n']}{'; заблоковано до ' + m['u'] if m['u'] else ''})"),
    (r"live (?P<s>main|sub) stream started",
     lambda m: f"{'основний' if m['s'] == 'main' else 'додатковий'} потік: перегляд почато"),
    (r"live (?P<s>main|sub) stream stopped after (?P<n>\d+) s",
     lambda m: f"{'основний' if m['s'] == 'main' else 'додатковий'} потік: перегляд завершено за {m['n']} с"),
    (r"live (?P<s>main|sub) stream stopped after (?P<n>\d+) s: cut by the lockdown \((?P<why>.+)\)",
     lambda m: f"{'основний' if m['s'] == 'main' else 'додатковий'} потік: перегляд припинено режимом блокування "
               f"за {m['n']} с ({detail(m['why'], 'uk')})"),
    # Lockdown (varta/lockdown) and the secrets key (varta/secrets), issue 19.
    (r"lockdown on: (?P<s>sensitive|all) cameras; reason: (?P<r>.*?)(?:; asked by (?P<a>\S+), confirmed by "
     r"(?P<c>\S+))?; via (?P<v>console|web|alert)",
     lambda m: f"блокування запроваджено: {_LD_SCOPE[m['s']]}; підстава: {m['r']}"
               f"{'; запит: ' + m['a'] + ', підтвердив: ' + m['c'] if m['a'] else ''}; {_LD_VIA[m['v']]}"),
    (r"lockdown off \((?P<s>sensitive|all) cameras, since (?P<t>\S+)\); reason: (?P<r>.*?)(?:; asked by (?P<a>\S+), "
     r"confirmed by (?P<c>\S+))?; via (?P<v>console|web|alert)",
     lambda m: f"блокування скасовано ({_LD_SCOPE[m['s']]}, з {m['t']}); підстава: {m['r']}"
               f"{'; запит: ' + m['a'] + ', підтвердив: ' + m['c'] if m['a'] else ''}; {_LD_VIA[m['v']]}"),
    (r"asked for lockdown (?P<m>on|off)(?: \((?P<s>sensitive|all) cameras\))?; reason: (?P<r>.*); awaits a second "
     r"person's confirmation",
     lambda m: f"запит: {'запровадити блокування (' + _LD_SCOPE[m['s']] + ')' if m['m'] == 'on' else 'скасувати блокування'}"
               f"; підстава: {m['r']}; чекає підтвердження другою особою"),
    (r"lockdown request (?P<st>withdrawn|refused) \((?P<m>on|off), asked by (?P<a>\S+)\)",
     lambda m: f"запит на {'запровадження' if m['m'] == 'on' else 'скасування'} блокування "
               f"{'відкликано' if m['st'] == 'withdrawn' else 'відхилено'} (запит: {m['a']})"),
    (r"confirmation refused: a second person must confirm: the one who asked cannot confirm their own request",
     "підтвердження відхилено: підтверджує друга особа, а не та, що подала запит"),
    (r"confirmation refused: the request has expired: ask again", "підтвердження відхилено: строк запиту минув"),
    (r"confirmation refused: the request is (?P<st>\w+), not waiting for confirmation",
     lambda m: f"підтвердження відхилено: запит уже не чекає підтвердження ({m['st']})"),
    (r"lockdown in force \((?P<r>.*)\): (?P<w>every camera|sensitive cameras) are shown only at restricted-zone "
     r"workstations",
     lambda m: f"діє режим блокування ({m['r']}): {'усі камери' if m['w'] == 'every camera' else 'чутливі камери'} "
               "показуються лише на робочих місцях обмеженої зони"),
    (r"lockdown in force \((?P<r>.*)\): API tokens' video access to (?P<w>every camera|sensitive cameras) is suspended",
     lambda m: f"діє режим блокування ({m['r']}): відео {'усіх камер' if m['w'] == 'every camera' else 'чутливих камер'} "
               "для ключів API призупинено"),
    (r"bulk viewing: (?P<v>\S+) \((?P<who>.*), (?P<role>\w+), from (?P<src>\S+)\) opened (?P<n>\d+) different cameras "
     r"within (?P<w>\S+) s \(the policy allows (?P<x>\S+)\)",
     lambda m: f"масовий перегляд: {m['v']} ({m['who']}, {_role(m['role'])}, з {m['src']}) відкрив {m['n']} різних камер "
               f"за {m['w']} с (політика дозволяє {m['x']})"),
    (r"limit (?P<n>bulk_view_cameras|bulk_view_window_s) set to (?P<v>\S+)",
     lambda m: f"межу «{'камер на одного переглядача' if m['n'] == 'bulk_view_cameras' else 'вікно масового перегляду, с'}» "
               f"встановлено: {m['v']}"),
    (r"secrets key rotated: key (?P<k>\S+) now seals new values; (?P<n>\d+) values re-sealed",
     lambda m: f"ключ секретів замінено: новий ключ {m['k']}; перешифровано значень: {m['n']}"),
    (r"secrets keys retired: (?P<k>.+)", lambda m: f"вилучено старі ключі секретів: {m['k']}"),
    (r"setting (?P<n>\w+) sealed", lambda m: f"параметр {m['n']} зашифровано"),
    (r"viewed (?P<a>\S+) – (?P<b>\S+) \((?P<n>\d+) segments?\)",
     lambda m: f"переглянуто {m['a']} – {m['b']} ({_segments(m)})"),
    (r"(?P<f>json|csv|pdf) (?P<p>.+?) (?P<q>\{.*\}) \((?P<n>\d+) lines\)",
     lambda m: f"{_FORMATS[m['f']]} {m['p']} {m['q'] if m['q'] != '{}' else ''} "
               f"({m['n']} {_plural(m['n'], 'рядок', 'рядки', 'рядків')})".replace("  ", " ")),
    (r"verify: (?P<r>intact|BROKEN) \((?P<n>\d+) lines\)",
     lambda m: f"перевірка: {'журнал цілий' if m['r'] == 'intact' else 'ЖУРНАЛ ПОШКОДЖЕНО'} "
               f"({m['n']} {_plural(m['n'], 'рядок', 'рядки', 'рядків')})"),
    (r"who viewed (?P<p>.+)", lambda m: f"хто переглядав {m['p']}"),
    (r"who viewed", "хто переглядав"),
    (r"node (?P<id>\S+) started: (?P<r>[a-z, ]+) at (?P<at>\S+)",
     lambda m: f"вузол {m['id']} запущено: {_roles(m['r'])}, адреса {m['at']}"),
    (r"node (?P<id>\S+) stopped", lambda m: f"вузол {m['id']} зупинено"),
    (r"added: (?P<rest>.+)", lambda m: f"додано: {_camera_words(m['rest'])}"),
    (r"changed: (?P<rest>.+)", lambda m: f"змінено: {m['rest']}"),
    (r"intervals added: (?P<rest>.+)", lambda m: f"додано інтервали: {m['rest']}"),
    (r"removed \(footage kept under retention\)", "вилучено (записи зберігаються до кінця строку)"),
    (r"(?P<k>police|council|third_party|court|other) (?P<no>.+?) of (?P<d>\S+) from (?P<who>.+?); hold (?P<h>\S+) on (?P<i>.+)",
     lambda m: f"{_KINDS.get(m['k'], m['k'])} № {m['no']} від {m['d']}, заявник: {m['who']}; утримання {m['h']}: {m['i']}"),
    (r"(?P<n>\d+) session\(s\) ended(?P<e> \(everywhere\))?; session lasted (?P<s>\d+) s",
     lambda m: f"завершено сеансів: {m['n']}{' (усі)' if m['e'] else ''}; сеанс тривав {m['s']} с"),
    (r"second factor \(TOTP\) enrolled", "другий фактор (TOTP) зареєстровано"),
    (r"password changed; (?P<n>\d+) other session\(s\) ended",
     lambda m: f"пароль змінено; завершено інших сеансів: {m['n']}"),
    (r"(?P<rule>.+): only an outside system's API token \((?P<c>[^)]+)\)",
     lambda m: f"{_rule(m['rule'])}: лише для ключа API зовнішньої системи ({m['c']})"),
    (r"(?P<rule>.+): only from a restricted-zone workstation \((?P<c>[^)]+)\)",
     lambda m: f"{_rule(m['rule'])}: лише з робочого місця обмеженої зони ({m['c']})"),
    (r"(?P<rule>.+): only on site, not in a remote session \((?P<c>[^)]+)\)",
     lambda m: f"{_rule(m['rule'])}: лише безпосередньо, не у віддаленому сеансі ({m['c']})"),
    (r"(?P<rule>.+): role (?P<r>\w+) has remote access only, not on site \((?P<c>[^)]+)\)",
     lambda m: f"{_rule(m['rule'])}: роль «{_role(m['r'])}» має лише віддалений доступ ({m['c']})"),
    (r"(?P<rule>.+): not permitted to role (?P<r>\w+) \((?P<c>[^)]+)\)",
     lambda m: f"{_rule(m['rule'])}: не дозволено ролі «{_role(m['r'])}» ({m['c']})"),
    (r"(?P<a>.+?) – (?P<b>.+?) (?P<f>\{.*\}): (?P<n>\d+) tracks",
     lambda m: f"{m['a']} – {m['b']} {_search_filters(m['f'])}: знайдено {m['n']}"),
    (r"near (?P<where>.*?)(?P<lat>-?[\d.]+),(?P<lon>-?[\d.]+) within (?P<r>\d+) m: (?P<n>\d+) cameras",
     lambda m: f"біля {m['where']}{m['lat']},{m['lon']} у межах {m['r']} м: камер {m['n']}"),
    (r"address list imported: (?P<n>\d+) addresses(?P<rest>.*)", lambda m: f"імпортовано адрес: {m['n']}{m['rest']}"),
    (r"camera group (?P<g>.+) is not assigned to (?P<l>\S+)",
     lambda m: f"групу камер {m['g']} не призначено користувачу {m['l']}"),
]]

_LD_SCOPE = {"sensitive": "чутливі камери", "all": "усі камери"}
_LD_VIA = {"console": "з консолі сервера", "web": "з пульта", "alert": "за сигналом тривоги"}
_KINDS = {"police": "запит поліції", "council": "запит ради", "third_party": "запит третьої особи",
          "court": "запит суду", "other": "запит"}
_ROLE_WORDS = {"recorder": "запис", "web": "веб", "analytics": "аналітика"}
# The order's own words for what each action allows (policy.MATRIX texts), in Ukrainian.
_RULES = {
    "remote sessions": "віддалені сеанси", "on-site sessions": "безпосередні сеанси",
    "live video": "відео наживо", "play recorded video": "перегляд записів", "export recorded video": "експорт записів",
    "what is recorded: ranges and gaps": "що записано: інтервали й прогалини",
    "camera list, places and state": "перелік камер, місця та стан",
    "an alert feed's automatic lockdown": "автоматичне блокування за сигналом тривоги",
    "lock down remote views of sensitive cameras (with a second person's confirmation)":
        "блокування віддаленого перегляду чутливих камер (з підтвердженням другою особою)",
}


_FILTER_KEYS = {"class": "клас", "camera": "камера", "heading": "напрямок", "colour": "колір", "entry": "звідки",
                "exit": "куди", "min_speed": "швидкість від", "min_dwell_s": "тривалість від, с",
                "max_dwell_s": "тривалість до, с", "polygon": "ділянка"}
_VALUE_WORDS = {"person": "людина", "car": "автомобіль", "bicycle": "велосипед", "motorcycle": "мотоцикл",
                "bus": "автобус", "truck": "вантажівка", "n": "на північ", "ne": "на північний схід", "e": "на схід",
                "se": "на південний схід", "s": "на південь", "sw": "на південний захід", "w": "на захід",
                "nw": "на північний захід", "up": "вгору кадру", "down": "вниз кадру", "left": "ліворуч",
                "right": "праворуч", "up-right": "вгору-праворуч", "up-left": "вгору-ліворуч",
                "down-right": "вниз-праворуч", "down-left": "вниз-ліворуч", "red": "червоний", "orange": "помаранчевий",
                "yellow": "жовтий", "green": "зелений", "cyan": "блакитний", "blue": "синій", "purple": "фіолетовий",
                "pink": "рожевий", "brown": "коричневий", "black": "чорний", "grey": "сірий", "white": "білий",
                "top": "згори", "bottom": "знизу", "inside": "у кадрі"}


def _search_filters(text: str) -> str:
    """A track search's filters as written ({'class': ['person'], ...}), in Ukrainian."""
    import ast

    try:
        filters = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
    if not isinstance(filters, dict):
        return text
    parts = []
    for k, v in filters.items():
        vals = v if isinstance(v, list) else [v]
        parts.append(f"{_FILTER_KEYS.get(k, k)}: {', '.join(_VALUE_WORDS.get(str(x), str(x)) for x in vals)}")
    return "(" + "; ".join(parts) + ")" if parts else ""


def _rule(text: str) -> str:
    return _RULES.get(text, text)


def _role(code: str) -> str:
    from varta.access.policy import ROLE_TITLES

    return ROLE_TITLES.get(code, (code, code))[0]


def _roles(text: str) -> str:
    return ", ".join(_ROLE_WORDS.get(r.strip(), r.strip()) for r in text.split(","))


def _camera_words(rest: str) -> str:
    return re.sub(r", group ", ", група ", rest, count=1)


_CABINET = {"person": "хто", "organisation": "організація", "purpose": "мета", "let_in_by": "допустив(-ла)",
            "entered": "увійшов(-ла)", "left": "вийшов(-ла)"}


def detail(text: str, lang: str) -> str:
    """The detail in ``lang`` (as written when no pattern knows it)."""
    if lang != "uk" or not text:
        return text
    if text.startswith('{"person"'):  # a server-cabinet entry (journal.cabinet), stored as JSON
        try:
            fields = json.loads(text)
        except ValueError:
            return text
        return "; ".join(f"{_CABINET.get(k, k)}: {v}" for k, v in fields.items() if v)
    for rx, uk in _DETAILS:
        m = rx.fullmatch(text)
        if m:
            return uk(m) if callable(uk) else uk
    return text


def _pair(table: dict, code: str, lang: str) -> str:
    return table[code][0 if lang == "uk" else 1] if code in table else code


def object_text(obj: str, lang: str) -> str:
    kind, sep, name = obj.partition(":")
    if sep and kind in OBJECT_KINDS:
        return f"{_pair(OBJECT_KINDS, kind, lang)} {name}"
    return _pair(OBJECTS, obj, lang)


def line(ln: dict, lang: str) -> dict:
    """What a reader sees of one journal line, in ``lang``."""
    from varta.access.policy import ROLE_TITLES

    role = ln.get("role") or ""
    account, full_name, source = ln.get("account") or "", ln.get("full_name") or "", ln.get("source") or ""
    if lang == "uk" and role == "console":  # a command typed on the server (access.service.console_principal)
        account = re.sub(r"^os:", "ОС:", account)
        full_name = re.sub(r"^operating-system user ", "користувач ОС ", full_name)
        source = re.sub(r"^console:", "консоль:", source)
    return {
        "account": account, "full_name": full_name, "source": source,
        "action": _pair(ACTIONS, ln["action"], lang),
        "result": _pair(RESULTS, ln["result"], lang),
        "access": _pair(ACCESS, ln.get("access") or "", lang),
        "role": (ROLE_TITLES[role][0 if lang == "uk" else 1] if role in ROLE_TITLES
                 else ("консоль сервера" if lang == "uk" else "server console") if role == "console" else role),
        "object": object_text(ln.get("object") or "", lang),
        "detail": detail(ln.get("detail") or "", lang),
    }
