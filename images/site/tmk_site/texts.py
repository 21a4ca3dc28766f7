"""Everything the site says, in Russian and English, and the choice between them."""

from .settings import LANGUAGES


def pick_language(accept_language: str | None, default: str) -> str:
    """The supported language the browser prefers most (by `q`), else the site's default."""
    best, best_q = default, 0.0
    for item in (accept_language or "").split(","):
        tag, _, params = item.strip().partition(";")
        language = tag.strip().split("-")[0].lower()
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                continue
        # Strictly greater: among equal weights the browser's first choice wins.
        if language in LANGUAGES and q > best_q:
            best, best_q = language, q
    return best


# Per language: the page furniture, then one entry per problem (keyed by Problem.value; `-audio` is the
# variant for audio-only consultations). `button` reloads the page.
TEXTS = {
    "ru": {
        "product": "Телемедицинская консультация",
        "connecting": "Подключение к консультации",
        # The connecting screen's steps, in order; call.js marks each as it is reached.
        "steps": {
            "devices": "Проверяем камеру и микрофон",
            "devices-audio": "Проверяем микрофон",
            "loading": "Загружаем видеосвязь",
        },
        "contact": "Как связаться с клиникой",
        "phone": "Телефон",
        "address": "Адрес",
        "support-code": "Код для службы поддержки",
        "device-time": "по времени вашего устройства",
        "doctor-not-joined": "Врач ещё не подключился. Оставайтесь на странице — консультация начнётся, когда он войдёт.",
        "patient-waiting": "Пациент ждёт вас в консультации.",
        "missing": {
            "title": "Ссылка неполная",
            "text": "В ссылке не хватает части, нужной для входа в консультацию.",
            "action": "Откройте ссылку из SMS или письма ещё раз — целиком. "
            "Если не получится, попросите клинику прислать ссылку заново.",
        },
        "malformed": {
            "title": "Ссылка повреждена",
            "text": "По этой ссылке нельзя войти в консультацию: "
            "возможно, при копировании часть символов потерялась или изменилась.",
            "action": "Откройте ссылку из SMS или письма ещё раз — целиком. "
            "Если не получится, попросите клинику прислать ссылку заново.",
        },
        "not-yet-valid": {
            "title": "Консультация ещё не началась",
            "text": "Откройте эту ссылку в назначенное время:",
            "action": "Если оставить страницу открытой, она сама подключит вас в это время.",
        },
        "expired": {
            "title": "Срок действия ссылки истёк",
            "text": "Время, на которое была назначена консультация, прошло.",
            "action": "Если консультация ещё нужна, свяжитесь с клиникой — вам пришлют новую ссылку.",
        },
        "closed": {
            "title": "Консультация завершена",
            "text": "Эта консультация закрыта, войти в неё больше нельзя.",
            "action": "Если у вас остались вопросы, свяжитесь с клиникой.",
        },
        "unknown": {
            "title": "Консультация не найдена",
            "text": "По этой ссылке нет консультации: возможно, ссылка скопирована не полностью "
            "или консультацию отменили.",
            "action": "Проверьте ссылку или свяжитесь с клиникой.",
        },
        "unavailable": {
            "title": "Сервис временно недоступен",
            "text": "Мы не смогли проверить вашу консультацию: сервис сейчас не отвечает.",
            "action": "Попробуйте ещё раз через минуту.",
            "button": "Попробовать снова",
        },
        "insecure": {
            "title": "Страница открыта без защищённого соединения",
            "text": "Браузер даёт доступ к камере и микрофону только на страницах "
            "с защищённым адресом (https://).",
            "action": "Откройте ссылку из SMS или письма целиком — она начинается с https://.",
        },
        "script-failed": {
            "title": "Не удалось загрузить видеосвязь",
            "text": "Видеосвязь не загрузилась. Обычно причина — нестабильный интернет "
            "или сеть, которая её блокирует (например, рабочий Wi-Fi).",
            "action": "Проверьте подключение к интернету и попробуйте снова. "
            "Может помочь мобильный интернет вместо Wi-Fi. Если не получится, сообщите клинике код ниже.",
            "button": "Попробовать снова",
        },
        "jitsi-down": {
            "title": "Видеосервер клиники не отвечает",
            "text": "Дело не в вашем интернете: сервер видеосвязи клиники сейчас недоступен.",
            "action": "Попробуйте снова через несколько минут. Если не получится, свяжитесь с клиникой "
            "и назовите код ниже.",
            "button": "Попробовать снова",
        },
        "permission-denied": {
            "title": "Нет доступа к камере и микрофону",
            "text": "Чтобы войти в консультацию, разрешите браузеру использовать камеру и микрофон.",
            "action": "Нажмите на значок слева от адреса страницы, разрешите «Камера» и «Микрофон» "
            "и нажмите «Попробовать снова». На телефоне: настройки браузера → «Настройки сайтов» → "
            "«Камера» и «Микрофон»; на iPhone: «аА» слева от адреса → «Настройки веб-сайта».",
            "button": "Попробовать снова",
        },
        "permission-denied-audio": {
            "title": "Нет доступа к микрофону",
            "text": "Чтобы войти в консультацию, разрешите браузеру использовать микрофон.",
            "action": "Нажмите на значок слева от адреса страницы, разрешите «Микрофон» "
            "и нажмите «Попробовать снова». На телефоне: настройки браузера → «Настройки сайтов» → "
            "«Микрофон»; на iPhone: «аА» слева от адреса → «Настройки веб-сайта».",
            "button": "Попробовать снова",
        },
        "ended": {
            "title": "Вы вышли из консультации",
            "text": "Видеозвонок для вас завершён.",
            "action": "Эту страницу можно закрыть. Если вы вышли случайно, войдите снова.",
            "button": "Войти снова",
        },
    },
    "en": {
        "product": "Telemedicine consultation",
        "connecting": "Connecting to the consultation",
        "steps": {
            "devices": "Checking your camera and microphone",
            "devices-audio": "Checking your microphone",
            "loading": "Loading the video call",
        },
        "contact": "How to contact the clinic",
        "phone": "Phone",
        "address": "Address",
        "support-code": "Code for IT support",
        "device-time": "your device's time",
        "doctor-not-joined": "The doctor has not joined yet. Stay on this page: the consultation starts when they do.",
        "patient-waiting": "The patient is waiting for you in the consultation.",
        "missing": {
            "title": "This link is incomplete",
            "text": "Part of the link that is needed to join the consultation is missing.",
            "action": "Open the link from your text message or e-mail again, in full. "
            "If that does not help, ask the clinic to send it again.",
        },
        "malformed": {
            "title": "This link is damaged",
            "text": "This link cannot be used to join the consultation: "
            "some characters may have been lost or changed when it was copied.",
            "action": "Open the link from your text message or e-mail again, in full. "
            "If that does not help, ask the clinic to send it again.",
        },
        "not-yet-valid": {
            "title": "The consultation has not started yet",
            "text": "Please open this link again at:",
            "action": "If you leave this page open, it will connect you by itself at that time.",
        },
        "expired": {
            "title": "This link has expired",
            "text": "The time booked for this consultation is over.",
            "action": "If you still need the consultation, contact the clinic and they will send you a new link.",
        },
        "closed": {
            "title": "This consultation is over",
            "text": "This consultation has been closed; it can no longer be joined.",
            "action": "If you have more questions, please contact the clinic.",
        },
        "unknown": {
            "title": "Consultation not found",
            "text": "There is no consultation at this link: it may have been copied only in part, "
            "or the consultation was cancelled.",
            "action": "Check the link or contact the clinic.",
        },
        "unavailable": {
            "title": "Service temporarily unavailable",
            "text": "We could not check your consultation because the service is not responding.",
            "action": "Please try again in a minute.",
            "button": "Try again",
        },
        "insecure": {
            "title": "This page was not opened over a secure connection",
            "text": "Browsers allow the camera and microphone only on pages with a secure address (https://).",
            "action": "Open the link from your text message or e-mail in full; it starts with https://.",
        },
        "script-failed": {
            "title": "The video call could not be loaded",
            "text": "The video call did not load. This is usually caused by an unstable internet connection "
            "or by a network that blocks it (such as an office Wi-Fi).",
            "action": "Check your internet connection and try again. Mobile data instead of Wi-Fi may help. "
            "If it still does not work, tell the clinic the code below.",
            "button": "Try again",
        },
        "jitsi-down": {
            "title": "The clinic's video server is not responding",
            "text": "This is not your internet connection: the clinic's video server cannot be reached right now.",
            "action": "Try again in a few minutes. If it still does not work, contact the clinic and give them "
            "the code below.",
            "button": "Try again",
        },
        "permission-denied": {
            "title": "No access to the camera and microphone",
            "text": "To join the consultation, allow this browser to use your camera and microphone.",
            "action": "Click the icon to the left of the page address, allow Camera and Microphone, then press "
            "“Try again”. On a phone: browser settings → Site settings → Camera and Microphone; "
            "on an iPhone: “aA” left of the address → Website Settings.",
            "button": "Try again",
        },
        "permission-denied-audio": {
            "title": "No access to the microphone",
            "text": "To join the consultation, allow this browser to use your microphone.",
            "action": "Click the icon to the left of the page address, allow Microphone, then press "
            "“Try again”. On a phone: browser settings → Site settings → Microphone; "
            "on an iPhone: “aA” left of the address → Website Settings.",
            "button": "Try again",
        },
        "ended": {
            "title": "You have left the consultation",
            "text": "The video call has ended for you.",
            "action": "You can close this page. If you left by mistake, join again.",
            "button": "Join again",
        },
    },
}
