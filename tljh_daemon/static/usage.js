// Usage charts stay current: the hub renders them (SVG), so a refresh swaps in the fresh
// page's charts. The home page refreshes its own, every server's (every 3 sampling intervals); the admin panel's script calls
// swapUsageCharts with each page it re-reads.
(function () {
  window.swapUsageCharts = function (doc, selector) {
    var fresh = doc.querySelector(selector), here = document.querySelector(selector);
    if (fresh && here && fresh.innerHTML !== here.innerHTML) here.innerHTML = fresh.innerHTML;
  };
  var home = document.querySelector("#usage[data-refresh]");
  if (!home) return;
  setInterval(function () {
    fetch(window.location.href, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) throw new Error(r.statusText);
      return r.text();
    }).then(function (html) {
      window.swapUsageCharts(new DOMParser().parseFromString(html, "text/html"), "#usage-groups");
    }).catch(function () {});
  }, Number(home.dataset.refresh) * 1000);
})();
