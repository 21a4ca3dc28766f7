"""The site in headless Chromium: what the doctor and the patient see when they open their link."""

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import jwt
import pytest
from site_standins import (
    BROKEN_SESSION, CLINIC_ADDRESS, CLINIC_PHONE, INSECURE_HOST, JITSI_CHECK, JITSI_DOMAIN, LOGO_URL, MINTED, ROOM,
    SCREENSHOTS, SESSIONS, mint, short_code,
)

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 360, "height": 740}

# Stands in for https://<jitsi-domain>/external_api.js: records what the site asks for and, like the real one,
# puts a Jitsi frame into the parent node.
JITSI_STAND_IN = """
window.__jitsiCalls = [];
window.JitsiMeetExternalAPI = function (domain, options) {
  window.__jitsiCalls.push({domain: domain, options: Object.assign({}, options, {parentNode: options.parentNode.id})});
  var frame = document.createElement('iframe');
  frame.src = 'https://' + domain + '/' + options.roomName;
  frame.allow = 'camera; microphone';
  options.parentNode.appendChild(frame);
  var listeners = {};
  this.addListener = function (event, listener) { listeners[event] = listener; };
  this.dispose = function () { frame.remove(); };
  window.__jitsiHangUp = function () { listeners.readyToClose(); };
};
"""
JITSI_FRAME = ("<!doctype html><body style='margin:0;height:100vh;display:flex;align-items:center;"
               "justify-content:center;background:#1f2a36;color:#fff;font:20px sans-serif'>Jitsi Meet (stand-in)")
LOGO = ("<svg xmlns='http://www.w3.org/2000/svg' width='64' height='32'><rect width='64' height='32' rx='6' "
        "fill='#2a9d5c'/><text x='32' y='22' font-size='16' text-anchor='middle' fill='#fff'>Зд</text></svg>")
# Records the devices the page asks for, then lets Chromium's fake devices answer.
RECORD_MEDIA_REQUESTS = """
window.__mediaRequests = [];
if (navigator.mediaDevices) {
  var realGetUserMedia = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = function (constraints) {
    window.__mediaRequests.push(constraints);
    return realGetUserMedia(constraints);
  };
}
"""


@dataclass
class Tab:
    page: object
    script_requests: list = field(default_factory=list)
    hosts: set = field(default_factory=set)
    console: list = field(default_factory=list)
    held: list = field(default_factory=list)  # requests for the Jitsi script not answered yet (jitsi="hold")

    def jitsi_calls(self):
        return self.page.evaluate("window.__jitsiCalls")

    def wait_for_call(self) -> dict:
        # The stand-in puts a frame in as it starts (wait_for_function would need the eval the CSP forbids).
        self.page.locator("#meet iframe").wait_for(state="attached", timeout=10_000)
        [call] = self.jitsi_calls()
        return call

    def problem(self, name: str):
        section = self.page.locator(f"#problem-{name}")
        section.wait_for(state="visible", timeout=10_000)
        return section

    def assert_nothing_started(self):
        assert self.script_requests == [], "the Jitsi script must not even be loaded"
        assert self.jitsi_calls() is None
        assert self.page.locator("iframe").count() == 0

    def screenshot(self, name: str):
        """Both sizes; at phone width nothing may stick out sideways."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
            self.page.set_viewport_size(size)
            self.page.screenshot(path=SCREENSHOTS / f"{name}-{label}.png")
        assert self.page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        self.page.set_viewport_size(DESKTOP)


@pytest.fixture
def open_tab(browser):
    """Opens a tab in a fresh browser profile: `open_tab(url, locale=..., permissions=..., jitsi=...)`."""
    contexts = []

    def open_(url: str, locale: str = "ru-RU", permissions=("camera", "microphone"), jitsi: str = "serve"):
        context = browser.new_context(locale=locale, timezone_id="Europe/Moscow", viewport=DESKTOP,
                                      permissions=list(permissions))
        contexts.append(context)
        context.add_init_script(RECORD_MEDIA_REQUESTS)
        tab = Tab(context.new_page())

        def jitsi_route(route):
            if route.request.url == f"https://{JITSI_DOMAIN}/external_api.js":
                tab.script_requests.append(route.request.url)
                if jitsi == "unreachable":
                    return route.abort("connectionrefused")
                if jitsi == "hold":
                    return tab.held.append(route)  # a slow network: the test answers it later
                return route.fulfill(body=JITSI_STAND_IN, content_type="application/javascript")
            return route.fulfill(body=JITSI_FRAME, content_type="text/html")

        context.route(f"https://{JITSI_DOMAIN}/**", jitsi_route)
        context.route(LOGO_URL, lambda route: route.fulfill(body=LOGO, content_type="image/svg+xml"))
        tab.page.on("request", lambda request: tab.hosts.add(urlsplit(request.url).hostname))
        tab.page.on("console", lambda message: tab.console.append(message.text))
        tab.response = tab.page.goto(url)
        return tab

    yield open_
    for context in contexts:
        context.close()


def test_a_valid_link_starts_the_call_in_one_step(site, open_tab):
    token = mint(name="Анна Смирнова")
    tab = open_tab(site.link(token=token))

    call = tab.wait_for_call()
    assert call["domain"] == JITSI_DOMAIN
    options = call["options"]
    assert options["roomName"] == ROOM
    assert options["jwt"] == token
    assert options["userInfo"] == {"displayName": "Анна Смирнова"}
    assert options["lang"] == "ru"
    assert options["parentNode"] == "meet"
    assert options["configOverwrite"] == {"prejoinConfig": {"enabled": True}, "disableDeepLinking": True}
    # Camera and microphone were asked for before the call, on the site's own page.
    assert tab.page.evaluate("window.__mediaRequests") == [{"audio": True, "video": True}]

    assert tab.response.status == 200
    assert tab.page.locator("header .name").inner_text() == "Клиника «Здоровье»"
    assert tab.page.locator("header img.logo").get_attribute("src") == LOGO_URL
    # Nothing from anywhere but the site, the Jitsi domain and the company's logo; nothing the CSP blocked.
    assert tab.hosts <= {"127.0.0.1", JITSI_DOMAIN, urlsplit(LOGO_URL).hostname}
    assert not [line for line in tab.console if "Content Security Policy" in line]

    # The call fills a phone's screen; the header stays small.
    tab.page.set_viewport_size(PHONE)
    frame = tab.page.locator("#meet iframe").bounding_box()
    header = tab.page.locator("header").bounding_box()
    assert frame["width"] == PHONE["width"]
    assert header["height"] <= 48
    assert frame["height"] >= PHONE["height"] - header["height"] - 1
    tab.screenshot("call")


def test_audio_only_asks_only_for_the_microphone_and_starts_with_the_camera_off(site, open_tab):
    token = mint()
    tab = open_tab(site.link(session_id=13, token=token))

    options = tab.wait_for_call()["options"]
    assert options["configOverwrite"]["startWithVideoMuted"] is True
    assert tab.page.evaluate("window.__mediaRequests") == [{"audio": True, "video": False}]
    # The session's logo is the original's `file:///` placeholder: no logo at all.
    assert tab.page.locator("header img").count() == 0


def test_the_token_leaves_the_address_bar_and_a_reload_still_joins(site, open_tab):
    token = mint()
    tab = open_tab(site.link(token=token))
    tab.wait_for_call()
    assert tab.page.url == site.link()

    tab.page.reload()
    call = tab.wait_for_call()
    assert call["options"]["jwt"] == token
    assert tab.page.url == site.link()


def test_the_short_link_of_an_sms_joins_on_a_phone_with_no_token_in_any_address(site, open_tab):
    token = mint(name="Анна Смирнова")
    code = short_code(12, "patient", token)
    tab = open_tab(site.short_link(code))
    tab.page.set_viewport_size(PHONE)

    options = tab.wait_for_call()["options"]
    assert options["jwt"] == token and options["roomName"] == ROOM
    assert options["userInfo"] == {"displayName": "Анна Смирнова"}
    assert tab.page.url == site.short_link(code)
    tab.screenshot("short-link")

    tab.page.reload()
    assert tab.wait_for_call()["options"]["jwt"] == token
    tab.page.evaluate("window.__jitsiHangUp()")
    tab.problem("ended").get_by_role("link", name="Войти снова").click()
    assert tab.wait_for_call()["options"]["jwt"] == token
    assert tab.page.url == site.short_link(code)


def test_a_short_link_of_an_ended_session_or_an_altered_one_says_so(site, open_tab):
    ended = open_tab(site.short_link(short_code(14, "patient", mint())))
    assert ended.response.status == 410
    ended.problem("closed")
    ended.assert_nothing_started()
    altered = open_tab(site.short_link("x" * 32))
    assert altered.response.status == 404
    altered.problem("unknown")
    altered.assert_nothing_started()


def test_leaving_the_call_says_so_and_joining_again_works(site, open_tab):
    token = mint()
    tab = open_tab(site.link(token=token))
    tab.wait_for_call()

    tab.page.evaluate("window.__jitsiHangUp()")
    ended = tab.problem("ended")
    assert "Вы вышли из консультации" in ended.inner_text()
    assert tab.page.locator("iframe").count() == 0
    tab.screenshot("ended")

    ended.get_by_role("link", name="Войти снова").click()
    assert tab.wait_for_call()["options"]["jwt"] == token


# What a user may open → the page's HTTP status, its problem and its heading.
UNUSABLE_LINKS = {
    "malformed": (lambda site: site.link(token="not-a-token"), 400, "malformed", "Ссылка повреждена"),
    "alg-none": (lambda site: site.link(token=mint(alg="none")), 400, "malformed", "Ссылка повреждена"),
    "other-room": (lambda site: site.link(token=mint(room="another-room")), 400, "malformed", "Ссылка повреждена"),
    "no-room": (lambda site: site.link(room="", token=mint()), 400, "malformed", "Ссылка повреждена"),
    "missing": (lambda site: site.link(), 400, "missing", "Ссылка неполная"),
    "expired": (lambda site: site.link(token=mint(starts_in=-timedelta(hours=2))), 410, "expired",
                "Срок действия ссылки истёк"),
    "session-expired": (lambda site: site.link(session_id=15, token=mint()), 410, "expired",
                        "Срок действия ссылки истёк"),
    "closed": (lambda site: site.link(session_id=14, token=mint()), 410, "closed", "Консультация завершена"),
    "unknown": (lambda site: site.link(session_id=99, token=mint()), 404, "unknown", "Консультация не найдена"),
    "api-down": (lambda site: site.link(session_id=BROKEN_SESSION, token=mint()), 503, "unavailable",
                 "Сервис временно недоступен"),
}


@pytest.mark.parametrize("case", UNUSABLE_LINKS)
def test_a_link_that_cannot_start_gets_its_own_page(site, open_tab, case):
    link, status, problem, title = UNUSABLE_LINKS[case]
    tab = open_tab(link(site))

    assert tab.response.status == status
    section = tab.problem(problem)
    assert section.locator("h1").inner_text() == title
    assert tab.page.locator("[data-problem]:visible").count() == 1
    assert "jwt=" not in tab.page.url
    tab.assert_nothing_started()
    tab.screenshot(f"problem-{case}")


def test_not_yet_valid_says_when_to_come_back_in_the_patients_time_zone(site, open_tab):
    token = mint(starts_in=timedelta(hours=2))
    tab = open_tab(site.link(token=token))

    assert tab.response.status == 403
    section = tab.problem("not-yet-valid")
    # The start the token names (the clock may have passed a minute since it was minted).
    starts = datetime.fromtimestamp(jwt.decode(token, options={"verify_signature": False})["nbf"], timezone.utc)
    moscow = starts + timedelta(hours=3)  # the browser's time zone in these tests
    assert moscow.strftime("%H:%M") in section.locator("time").inner_text()
    tab.assert_nothing_started()
    tab.screenshot("problem-not-yet-valid")


def test_left_open_until_the_start_the_page_joins_by_itself(site, open_tab):
    # The first load must reach the site before the start, on a loaded machine too (2 s was not always enough).
    token = mint(starts_in=timedelta(seconds=6))
    tab = open_tab(site.link(token=token))
    tab.problem("not-yet-valid")

    assert tab.wait_for_call()["options"]["jwt"] == token
    assert tab.page.url == site.link()


@pytest.mark.parametrize(("session_id", "title"), [(12, "Нет доступа к камере и микрофону"),
                                                   (13, "Нет доступа к микрофону")])
def test_refused_camera_or_microphone_explains_how_to_allow_them(site, open_tab, session_id, title):
    # No permissions granted: headless Chromium refuses getUserMedia as a user who clicked "Block" would.
    tab = open_tab(site.link(session_id=session_id, token=mint()), permissions=())

    section = tab.problem("permission-denied")
    assert section.locator("h1").inner_text() == title
    assert "Настройки сайтов" in section.inner_text()
    tab.assert_nothing_started()
    tab.screenshot(f"permission-denied-{session_id}")


def test_when_the_jitsi_script_does_not_load_it_says_so(site, open_tab):
    tab = open_tab(site.link(token=mint()), jitsi="unreachable")

    section = tab.problem("script-failed")
    assert section.locator("h1").inner_text() == "Не удалось загрузить видеосвязь"
    assert section.get_by_role("link", name="Попробовать снова").is_visible()
    assert tab.page.evaluate("window.__jitsiCalls") is None
    assert tab.page.locator("iframe").count() == 0
    tab.screenshot("script-failed")


def test_outside_a_secure_context_it_explains_https(site, open_tab):
    tab = open_tab(site.link(token=mint(), host=INSECURE_HOST))

    assert tab.page.evaluate("window.isSecureContext") is False
    section = tab.problem("insecure")
    assert "https://" in section.inner_text()
    tab.assert_nothing_started()
    tab.screenshot("insecure")


@pytest.mark.parametrize(("locale", "lang", "title"), [
    ("en-US", "en", "This link has expired"),
    ("ru-RU", "ru", "Срок действия ссылки истёк"),
    ("de-DE", "ru", "Срок действия ссылки истёк"),  # neither supported: the site's default
])
def test_the_language_follows_the_browser(site, open_tab, locale, lang, title):
    tab = open_tab(site.link(token=mint(starts_in=-timedelta(hours=2))), locale=locale)

    assert tab.page.locator("html").get_attribute("lang") == lang
    assert tab.problem("expired").locator("h1").inner_text() == title


def test_an_english_browser_gets_an_english_call(site, open_tab):
    tab = open_tab(site.link(token=mint()), locale="en-GB")

    assert tab.wait_for_call()["options"]["lang"] == "en"
    tab.page.evaluate("window.__jitsiHangUp()")
    assert tab.problem("ended").get_by_role("link").inner_text() == "Join again"
    tab.screenshot("ended-en")


def test_the_headers_allow_only_the_site_and_the_jitsi_domain(site, open_tab):
    tab = open_tab(site.link(token=mint()))
    headers = tab.response.headers

    policy = dict(
        (directive.split()[0], directive.split()[1:])
        for directive in headers["content-security-policy"].split(";")
    )
    jitsi = f"https://{JITSI_DOMAIN}"
    assert policy["default-src"] == ["'none'"]
    assert policy["script-src"] == ["'self'", jitsi]
    assert policy["frame-src"] == [jitsi]
    assert policy["connect-src"] == ["'self'", jitsi]
    assert policy["img-src"] == ["'self'", "https://logo.example"]
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "no-store"


def test_the_server_log_never_holds_a_token(site, open_tab):
    tab = open_tab(site.link(token=mint()))
    tab.wait_for_call()
    tab.page.reload()
    tab.wait_for_call()
    open_tab(site.link(token=mint(starts_in=-timedelta(hours=2)))).problem("expired")

    log = site.log_path.read_text()
    assert re.search(r"GET /session/12 200", log), "the access log must still record each request's path"
    assert "jwt" not in log
    assert ROOM not in log
    leaked = [token for token in MINTED if token in log or token.split(".")[1] in log]
    assert leaked == []


# --- what the pages say when things go wrong, and how to reach the clinic -----------------------------------------
def contrast(page, selector: str) -> float:
    """The WCAG contrast ratio of the element's text against its card's background."""
    return page.evaluate("""(selector) => {
        const rgb = (text) => text.match(/[0-9.]+/g).slice(0, 3).map(Number);
        const luminance = (text) => {
            const [r, g, b] = rgb(text).map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
            return 0.2126 * r + 0.7152 * g + 0.0722 * b;
        };
        const element = document.querySelector(selector);
        const text = luminance(getComputedStyle(element).color);
        const card = luminance(getComputedStyle(element.closest('.problem')).backgroundColor);
        return (Math.max(text, card) + 0.05) / (Math.min(text, card) + 0.05);
    }""", selector)


@pytest.mark.parametrize(("locale", "heading", "what"), [("ru-RU", "Как связаться с клиникой", "Телефон"),
                                                          ("en-US", "How to contact the clinic", "Phone")])
def test_the_pages_say_how_to_contact_the_clinic_and_what_to_do_stands_out(site, open_tab, locale, heading, what):
    tab = open_tab(site.link(token=mint(starts_in=-timedelta(hours=2))), locale=locale)
    section = tab.problem("expired")
    contact = section.locator(".contact")
    assert contact.locator("h2").inner_text() == heading
    phone = contact.get_by_role("link", name=CLINIC_PHONE)
    assert phone.get_attribute("href") == "tel:+74951234567" and what in contact.inner_text()
    assert CLINIC_ADDRESS in contact.inner_text()
    # The instruction is the card's strongest text (AAA contrast), never the lightest grey.
    assert contrast(tab.page, "#problem-expired .action") >= 7
    assert contrast(tab.page, "#problem-expired .action") >= contrast(tab.page, "#problem-expired p")
    tab.screenshot(f"contact-{locale}")


@pytest.mark.parametrize(("locale", "text"), [("ru-RU", "Эта консультация закрыта"),
                                              ("en-US", "This consultation has been closed")])
def test_a_closed_consultation_does_not_say_who_closed_it(site, open_tab, locale, text):
    # The session's status says CLOSED, not who closed it: the hospital system may have, as may the doctor.
    tab = open_tab(site.link(session_id=14, token=mint(name="Доктор Иванов")), locale=locale)
    body = tab.problem("closed").inner_text()
    assert text in body and "Врач" not in body and "doctor" not in body.lower()


def test_a_short_link_of_an_ended_session_keeps_the_clinics_name_and_logo(site, open_tab):
    tab = open_tab(site.short_link(short_code(14, "patient", mint())))
    assert tab.response.status == 410
    tab.problem("closed")
    assert tab.page.locator("header .name").inner_text() == "Клиника «Здоровье»"
    assert tab.page.locator("header img").get_attribute("src") == LOGO_URL
    tab.screenshot("short-link-closed")


@pytest.mark.parametrize(("locale", "title"), [("ru-RU", "Видеосервер клиники не отвечает"),
                                               ("en-US", "The clinic's video server is not responding")])
def test_our_jitsi_down_is_told_apart_from_the_patients_network(site, open_tab, locale, title):
    JITSI_CHECK["status"] = 502  # the site's server cannot get the script either: ours is down
    try:
        tab = open_tab(site.link(token=mint()), jitsi="unreachable", locale=locale)
        section = tab.problem("jitsi-down")
    finally:
        JITSI_CHECK["status"] = 200
    assert section.locator("h1").inner_text() == title
    assert section.locator("[data-code]").inner_text() == "JITSI-HTTP-502"
    assert "Wi-Fi" not in section.inner_text()
    assert tab.jitsi_calls() is None and tab.page.locator("iframe").count() == 0
    tab.screenshot(f"jitsi-down-{locale}")


def test_a_network_that_blocks_jitsi_says_so_with_a_code(site, open_tab):
    tab = open_tab(site.link(token=mint()), jitsi="unreachable")  # the site's server reaches Jitsi fine
    section = tab.problem("script-failed")
    assert "Wi-Fi" in section.inner_text()
    assert section.locator("[data-code]").inner_text() == "NET-BLOCKED"


@pytest.mark.parametrize(("locale", "devices", "loading"), [
    ("ru-RU", "Проверяем камеру и микрофон", "Загружаем видеосвязь"),
    ("en-US", "Checking your camera and microphone", "Loading the video call")])
def test_the_connecting_screen_shows_how_far_it_got(site, open_tab, locale, devices, loading):
    tab = open_tab(site.link(token=mint()), jitsi="hold", locale=locale)
    tab.page.set_viewport_size(PHONE)
    current = tab.page.locator('[data-step][data-state="current"]')
    current.wait_for(timeout=10_000)
    tab.page.locator('[data-step="loading"][data-state="current"]').wait_for(timeout=10_000)
    assert tab.page.locator('[data-step="devices"]').get_attribute("data-state") == "done"
    assert tab.page.locator('[data-step="devices"]').inner_text() == devices
    assert current.inner_text() == loading
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.page.screenshot(path=SCREENSHOTS / f"connecting-{locale}-phone.png")
    (script,) = tab.held  # the script arrives: the call starts
    script.fulfill(body=JITSI_STAND_IN, content_type="application/javascript")
    assert tab.wait_for_call()["options"]["roomName"] == ROOM


@pytest.mark.parametrize("locale", ["ru-RU", "en-US"])
def test_a_future_consultation_names_the_time_zone_of_its_time(site, open_tab, locale):
    tab = open_tab(site.link(token=mint(starts_in=timedelta(days=1))), locale=locale)
    section = tab.problem("not-yet-valid")
    shown = section.locator("time").inner_text()
    assert "GMT+3" in shown or "MSK" in shown, shown  # the browser's zone in these tests: Europe/Moscow
    assert "Europe/Moscow" in section.locator(".zone").inner_text()
    tab.screenshot(f"not-yet-valid-{locale}")


@pytest.mark.parametrize("doctor, says", [(False, "Врач ещё не подключился"), (True, "Пациент ждёт вас")])
def test_the_page_says_who_is_not_in_the_room_yet_while_the_room_says_so(site, open_tab, doctor, says):
    """The patient's page: the doctor has not joined yet; the doctor's (on Jitsi's pre-join screen): the patient is
    waiting. Each line goes once the room changes (the stand-in API's conference, as prosody's reports set it)."""
    room = SESSIONS[16][1]
    room["conference"] = {"doctorPresent": False, "waiting": True}
    tab = open_tab(site.link(session_id=16, token=mint(doctor=doctor)))
    tab.wait_for_call()
    line = tab.page.locator("#presence")
    line.wait_for(state="visible", timeout=10_000)
    assert says in line.inner_text()
    tab.screenshot("presence-doctor" if doctor else "presence-patient")
    room["conference"] = {"doctorPresent": True, "waiting": False}
    line.wait_for(state="hidden", timeout=10_000)
    assert tab.page.locator("#meet iframe").count() == 1  # the call went on under it
