// Ukrainian and English. The language is the user's choice (kept in localStorage);
// Ukrainian by default, as the order's own language.

const TEXT = {
  uk: {
    title: "Варта", login: "Логін", password: "Пароль", otp: "Код автентифікатора", signIn: "Увійти",
    signOut: "Вийти", live: "Наживо", health: "Стан", playback: "Архів", journal: "Журнал",
    allGroups: "Усі групи", allKinds: "Усі типи", layout: "Сітка", snapshot: "Знімок", fullscreen: "На весь екран",
    viewers: "глядачі", state_live: "наживо", state_connecting: "з'єднання…", state_reconnecting: "перепідключення…",
    state_refused: "заборонено", state_unsupported: "формат не підтримується", state_stopped: "зупинено",
    changePassword: "Змініть одноразовий пароль", currentPassword: "Поточний пароль", newPassword: "Новий пароль (від 12 символів)",
    save: "Зберегти", enrolTotp: "Віддалений доступ потребує другого фактора: відскануйте QR-код у застосунку-автентифікаторі й введіть код",
    confirm: "Підтвердити", camera: "Камера", stateCol: "Стан", reason: "Причина", lastFrame: "Останній кадр", fps: "Кадр/с",
    bitrate: "Бітрейт, кбіт/с", daysLeft: "Днів запису вистачить", disk: "Диск", noCameras: "Немає доступних камер",
    remote: "віддалений доступ", direct: "безпосередній доступ", restricted: "робоче місце обмеженої зони",
    enlarge: "Збільшити (основний потік)", back: "Назад до сітки",
    play: "Відтворити", choosePlayback: "Оберіть до 4 камер, дату й час", markIn: "Початок", markOut: "Кінець",
    export: "Експорт", markFirst: "Позначте початок і кінець інтервалу", zoom_month: "місяць", zoom_week: "тиждень",
    zoom_day: "доба", zoom_hour: "година", zoom_10min: "10 хв", zoom_minute: "хвилина",
    delay: "Затримка від камери до екрана", map: "Мапа", admin: "Адміністрування", cameras: "Камери", users: "Користувачі",
    name: "Назва / ПІБ", group: "Група", kind: "Тип", retention: "Зберігання", schedule: "Режим запису", days: "діб",
    add: "Додати", remove: "Вилучити", mode_continuous: "постійно", mode_off: "вимкнено", mode_motion: "за рухом",
    mode_events: "за подіями", position: "Посада", organisation: "Організація", groupsComma: "групи камер через кому",
    oneTimePassword: "одноразовий пароль", role: "Роль", groups: "Групи", disabled: "вимкнено", locked: "заблоковано",
    disable: "Вимкнути", enable: "Увімкнути", resetPassword: "Новий пароль", resetTotp: "Скинути 2FA", totpReset: "2FA скинуто",
    show: "Показати", time: "Час", source: "Звідки", action: "Дія", object: "Об'єкт", result: "Результат", detail: "Подробиці",
    verify: "Перевірити цілісність", journalIntact: "Журнал цілий, рядків", journalBroken: "ЖУРНАЛ ПОШКОДЖЕНО, перший рядок",
    timetable: "Тижневий розклад (JSON)", cabinet: "Доступ до шафи сервера:", person: "Хто (ПІБ)", purpose: "Мета", letInBy: "Хто допустив", noTiles: "Сервер тайлів не налаштовано (map_tile_url): камери показано за координатами.",
    tilesFailed: "Тайли мапи не завантажуються; камери показано за координатами.",
  },
  en: {
    title: "Varta", login: "Login", password: "Password", otp: "Authenticator code", signIn: "Sign in",
    signOut: "Sign out", live: "Live", health: "Health", playback: "Archive", journal: "Journal",
    allGroups: "All groups", allKinds: "All kinds", layout: "Layout", snapshot: "Snapshot", fullscreen: "Fullscreen",
    viewers: "viewers", state_live: "live", state_connecting: "connecting…", state_reconnecting: "reconnecting…",
    state_refused: "refused", state_unsupported: "format not supported", state_stopped: "stopped",
    changePassword: "Change your one-time password", currentPassword: "Current password", newPassword: "New password (12+ characters)",
    save: "Save", enrolTotp: "Remote access needs a second factor: scan the QR code with an authenticator app and enter the code",
    confirm: "Confirm", camera: "Camera", stateCol: "State", reason: "Reason", lastFrame: "Last frame", fps: "fps",
    bitrate: "Bitrate, kbit/s", daysLeft: "Days of storage", disk: "Disk", noCameras: "No cameras you may see",
    remote: "remote access", direct: "direct access", restricted: "restricted-zone workstation",
    enlarge: "Enlarge (main stream)", back: "Back to the grid",
    play: "Play", choosePlayback: "Choose up to 4 cameras, a date and a time", markIn: "Mark in", markOut: "Mark out",
    export: "Export", markFirst: "Mark the start and the end of the interval", zoom_month: "month", zoom_week: "week",
    zoom_day: "day", zoom_hour: "hour", zoom_10min: "10 min", zoom_minute: "minute",
    delay: "Delay from the camera to the screen", map: "Map", admin: "Administration", cameras: "Cameras", users: "Users",
    name: "Name", group: "Group", kind: "Kind", retention: "Retention", schedule: "Recording mode", days: "days",
    add: "Add", remove: "Remove", mode_continuous: "continuous", mode_off: "off", mode_motion: "on motion",
    mode_events: "on events", position: "Position", organisation: "Organisation", groupsComma: "camera groups, comma-separated",
    oneTimePassword: "one-time password", role: "Role", groups: "Groups", disabled: "disabled", locked: "locked",
    disable: "Disable", enable: "Enable", resetPassword: "New password", resetTotp: "Reset 2FA", totpReset: "2FA reset",
    show: "Show", time: "Time", source: "From", action: "Action", object: "Object", result: "Result", detail: "Detail",
    verify: "Verify integrity", journalIntact: "Journal intact, lines", journalBroken: "JOURNAL BROKEN, first bad line",
    timetable: "Weekly timetable (JSON)", cabinet: "Server cabinet access:", person: "Who (full name)", purpose: "Purpose", letInBy: "Let in by", noTiles: "No tile server configured (map_tile_url): cameras are placed by their coordinates.",
    tilesFailed: "Map tiles cannot be loaded; cameras are placed by their coordinates.",
  },
};

export let lang = localStorage.getItem("varta.lang") || "uk";

export function t(key) {
  return (TEXT[lang] && TEXT[lang][key]) || TEXT.en[key] || key;
}

export function setLang(l) {
  lang = l;
  localStorage.setItem("varta.lang", l);
  document.documentElement.lang = l;
}
