// Starts Swagger UI on /openapi.json. Kept out of index.html so the page
// needs no 'unsafe-inline' script under the server's Content-Security-Policy.
'use strict';

window.addEventListener('DOMContentLoaded', function () {
  window.ui = SwaggerUIBundle({
    url: '/openapi.json',
    dom_id: '#swagger-ui',
    // BaseLayout has no top bar with a URL box: this page documents one API,
    // and a box that loads any URL is only a way to confuse users.
    layout: 'BaseLayout',
    presets: [SwaggerUIBundle.presets.apis],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    deepLinking: true,
    // Never take ?url= or ?configUrl= from the address bar: that has been an
    // XSS vector in Swagger UI and we only ever show our own spec.
    queryConfigEnabled: false,
    // Tokens typed into "Authorize" live only in this page's memory; a
    // reload forgets them rather than leaving a bearer token in localStorage.
    persistAuthorization: false,
    // The docs exist mostly for the walkthrough "POST /token, Authorize,
    // GET /users/me", so save everyone the extra "Try it out" click.
    tryItOutEnabled: true,
    displayRequestDuration: true,
    // The default validator badge loads an image from a third-party host,
    // which the CSP blocks and which would leak the page's use anyway.
    validatorUrl: null,
  });
});
