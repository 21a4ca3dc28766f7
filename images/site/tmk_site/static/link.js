// Runs first on every consultation page. The token moves from the address bar (where it would end up in
// screenshots, shared addresses and browser history) into this tab's sessionStorage, so a reload still joins.
(function () {
  'use strict';
  var script = document.currentScript;
  var key = 'tmk.jwt.' + script.dataset.session;
  var url = new URL(location.href);
  var token = url.searchParams.get('jwt');

  function storage(action) {
    try {
      return action(window.sessionStorage);
    } catch (error) {
      return null; // storage switched off: a reload then needs the link again
    }
  }

  if (token) {
    storage(function (s) { s.setItem(key, token); });
    url.searchParams.delete('jwt');
    history.replaceState(history.state, '', url.pathname + url.search + url.hash);
  } else if ('resume' in script.dataset) {
    // The server saw no token; this tab may have kept it from the first visit.
    var kept = storage(function (s) { return s.getItem(key); });
    if (kept) {
      url.searchParams.set('jwt', kept);
      location.replace(url.href);
    }
  }

  document.addEventListener('DOMContentLoaded', function () {
    document.querySelectorAll('time[data-reload]').forEach(function (element) {
      var at = new Date(element.dateTime);
      // With the zone's name: a patient travelling, or a phone set to another zone, sees which time this is.
      element.textContent = at.toLocaleString(document.documentElement.lang, {
        year: 'numeric', month: 'long', day: 'numeric', hour: '2-digit', minute: '2-digit', timeZoneName: 'short'});
      var zone = element.parentNode.querySelector('[data-device-time]');
      if (zone) {
        zone.textContent = '(' + zone.dataset.deviceTime + ', ' + Intl.DateTimeFormat().resolvedOptions().timeZone + ')';
      }
      // Left open, the page joins by itself when the consultation starts (timers cap at about 24 days).
      var wait = at.getTime() - Date.now() + 1000;
      if (wait < 2147483647) {
        setTimeout(function () { location.reload(); }, Math.max(wait, 0));
      }
    });
  });
})();
