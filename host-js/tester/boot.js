// Runs before the tester's module: if the engine cannot load (pkg/ not built, the
// WebAssembly blocked, a browser without ES modules), say so instead of leaving
// "Loading the engine…" on screen forever.
(function () {
  'use strict';
  function fail(detail) {
    var status = document.getElementById('engine-status');
    if (!status || document.body.dataset.ready === 'true') return;
    status.textContent = 'The engine could not load: ' + detail +
      '. Build it with `npm run build` in host-js/ and serve host-js/ over http.';
    status.className = 'engine-status failed';
    document.body.dataset.ready = 'failed';
  }
  window.addEventListener('error', function (event) {
    fail(event.message || 'a script failed');
  });
  window.addEventListener('unhandledrejection', function (event) {
    fail(String(event.reason && event.reason.message || event.reason));
  });
  document.addEventListener('DOMContentLoaded', function () {
    var module = document.querySelector('script[type="module"]');
    if (module) module.addEventListener('error', function () { fail('app.js did not load'); });
  });
}());
