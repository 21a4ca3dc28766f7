// Starts the video call in one step, or shows in plain words why it cannot start.
(function () {
  'use strict';
  var config = JSON.parse(document.getElementById('call-config').textContent);
  var meet = document.getElementById('meet');
  // Long enough for a slow mobile network, short enough that nobody stares at "Connecting…" for ever.
  var SCRIPT_TIMEOUT_MS = 20000;

  function show(problem, code) {
    meet.hidden = true;
    document.querySelectorAll('[data-problem]').forEach(function (section) {
      section.hidden = section.dataset.problem !== problem;
    });
    var slot = document.querySelector('#problem-' + problem + ' [data-code]');
    if (slot && code) {
      slot.textContent = code;
    }
  }

  // The connecting screen: the steps before `name` are done, `name` is under way.
  function step(name) {
    var reached = false;
    document.querySelectorAll('[data-step]').forEach(function (item) {
      var current = item.dataset.step === name;
      reached = reached || current;
      item.dataset.state = current ? 'current' : (reached ? 'pending' : 'done');
    });
  }

  // The browser could not load Jitsi. The site's server tries too: if it cannot either, our Jitsi is down (its
  // code says how); if it can, the patient's network is what blocks it (the browser's code says how it failed).
  function explainScriptFailure(error) {
    return fetch('/jitsi-check', {cache: 'no-store'})
      .then(function (answer) { return answer.json(); })
      .then(function (check) {
        if (check.reachable) {
          show('script-failed', error.code);
        } else {
          show('jitsi-down', check.code);
        }
      }, function () { show('script-failed', error.code); });
  }

  // Asked here, on the site's own page, so that a refusal gets our explanation instead of a silent black tile
  // inside the call; the permission granted here also covers the Jitsi frame.
  function askForDevices() {
    return navigator.mediaDevices.getUserMedia({audio: true, video: !config.audioOnly})
      .then(function (stream) {
        stream.getTracks().forEach(function (track) { track.stop(); }); // Jitsi opens them itself
      });
  }

  function loadJitsi() {
    return new Promise(function (resolve, reject) {
      var script = document.createElement('script');
      function fail(code) {
        var error = new Error(code);
        error.code = code;
        reject(error);
      }
      var timer = setTimeout(function () { fail('NET-TIMEOUT'); }, SCRIPT_TIMEOUT_MS);
      script.onload = function () {
        clearTimeout(timer);
        // A captive portal or proxy may answer with something that is not the Jitsi script.
        typeof window.JitsiMeetExternalAPI === 'function' ? resolve() : fail('NET-NOT-JITSI');
      };
      script.onerror = function () {
        clearTimeout(timer);
        fail('NET-BLOCKED');
      };
      script.src = 'https://' + config.domain + '/external_api.js';
      document.head.appendChild(script);
    });
  }

  function startCall() {
    meet.textContent = '';
    var configOverwrite = {prejoinConfig: {enabled: true}, disableDeepLinking: true};
    if (config.audioOnly) {
      configOverwrite.startWithVideoMuted = true;
    }
    var api = new window.JitsiMeetExternalAPI(config.domain, {
      roomName: config.room,
      jwt: config.jwt,
      parentNode: meet,
      width: '100%',
      height: '100%',
      lang: config.lang,
      userInfo: {displayName: config.displayName},
      configOverwrite: configOverwrite,
      interfaceConfigOverwrite: {MOBILE_APP_PROMO: false},
    });
    api.addListener('readyToClose', function () {
      api.dispose();
      show('ended');
      clearInterval(presenceTimer);
      presence.hidden = true;
    });
    askWhoIsIn();
    presenceTimer = setInterval(askWhoIsIn, config.presenceSeconds * 1000);
  }

  // While the call is up: the patient's page says the doctor has not joined yet, the doctor's (on Jitsi's
  // pre-join screen, say) that the patient is waiting. No answer: the line stays as it was.
  var presence = document.getElementById('presence');
  var presenceTimer = null;
  function askWhoIsIn() {
    fetch(config.presenceUrl, {cache: 'no-store'})
      .then(function (answer) { return answer.ok ? answer.json() : null; })
      .then(function (room) {
        if (!room) {
          return;
        }
        var say = config.role === 'doctor' ? room.patientWaiting : !room.doctorPresent;
        presence.textContent = presence.dataset[config.role];
        presence.hidden = !say;
      }, function () {});
  }

  if (!window.isSecureContext || !navigator.mediaDevices) {
    show('insecure');
    return;
  }
  step('devices');
  askForDevices()
    .then(function () { return true; }, function (error) {
      // Any other failure (no camera, camera busy) is left to Jitsi's pre-join screen, which lets the user
      // pick another device or join without it.
      return error.name !== 'NotAllowedError' && error.name !== 'SecurityError';
    })
    .then(function (allowed) {
      if (!allowed) {
        show('permission-denied');
        return;
      }
      step('loading');
      return loadJitsi().then(startCall, explainScriptFailure);
    });
})();
