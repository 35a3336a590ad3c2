// window.jhdata.base_url is the hub's path under base_url (as in JupyterHub's pages).
// Calls to the hub's REST API with the page's XSRF token (cookie-authenticated requests need it).
window.hubApi = function (method, path, body) {
  var xsrf = document.querySelector('meta[name="xsrf"]').content;
  return fetch(window.jhdata.base_url + "api" + path, {
    method: method,
    credentials: "same-origin",
    headers: { "X-XSRFToken": xsrf, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  }).then(function (r) {
    return r.text().then(function (text) {
      var data = text ? JSON.parse(text) : null;
      if (!r.ok) {
        var error = new Error((data && data.message) || r.statusText);
        error.status = r.status;  // e.g. 429: wait error.retryAfter seconds and try again
        error.retryAfter = parseInt(r.headers.get("Retry-After"), 10) || null;
        throw error;
      }
      return data;
    });
  });
};
window.showStatus = function (text, isError) {
  var el = document.getElementById("status");
  el.textContent = text;
  el.className = isError ? "error" : "notice";
};
