// The admin panel: per-user and bulk actions through the REST API (hubApi sends the XSRF header).
// The table is rendered on the server; while servers start or stop, changed cells are
// re-rendered by the server for the names shown (?user=a&user=b), so selection, focus and
// scroll position stay put.
(function () {
  var api = window.hubApi, status = window.showStatus;
  var table = document.getElementById("users");
  var tbody = table.tBodies[0];
  var PARALLEL = 4;  // requests in flight at once for bulk actions
  function reloadSoon() { setTimeout(function () { window.location.reload(); }, 300); }
  function fail(e) { status(e.message, true); }
  function enc(name) { return encodeURIComponent(name); }
  function rows() { return Array.prototype.slice.call(tbody.querySelectorAll("tr[data-user]")); }
  function rowOf(name) { return tbody.querySelector('tr[data-user="' + CSS.escape(name) + '"]'); }

  // -- one user's buttons (delegated: refreshed cells bring new buttons) -----------------------
  var rowActions = {
    start: function (name) {
      status("Starting the server of " + name + "…");
      return startServer(name).then(watch);
    },
    stop: function (name) {
      status("Stopping the server of " + name + "…");
      return stopServer(name).then(function () {
        status("Stop requested for the server of " + name); watch();
      });
    },
    "toggle-admin": function (name, button) {
      return api("PATCH", "/users/" + enc(name), { admin: button.dataset.admin !== "true" }).then(function (user) {
        if (user && user.server_note) {  // a demoted admin's running server was restarted (or stopped)
          status(user.server_note);
          watch();
        } else {
          reloadSoon();
        }
      });
    },
    "delete": function (name) {
      if (!window.confirm("Delete user " + name + "?")) return Promise.resolve();
      return api("DELETE", "/users/" + enc(name)).then(reloadSoon);
    },
  };
  tbody.addEventListener("click", function (e) {
    var button = e.target.closest("button");
    if (!button) return;
    var name = button.closest("tr").dataset.user;
    Object.keys(rowActions).forEach(function (action) {
      if (button.classList.contains(action)) rowActions[action](name, button).catch(fail);
    });
  });

  // -- selection -------------------------------------------------------------------------------
  var selectPage = document.getElementById("select-page");
  var bulkButtons = ["start-selected", "stop-selected", "delete-selected"].map(function (id) {
    return document.getElementById(id);
  });
  function selected() {
    return rows().filter(function (r) { return r.querySelector("input.select").checked; })
      .map(function (r) { return r.dataset.user; });
  }
  function updateSelection() {
    var names = selected(), all = rows().length;
    rows().forEach(function (r) { r.classList.toggle("selected", r.querySelector("input.select").checked); });
    document.getElementById("selected-count").textContent = names.length + " selected";
    bulkButtons.forEach(function (b) { b.disabled = !names.length; });
    selectPage.checked = all > 0 && names.length === all;
    selectPage.indeterminate = names.length > 0 && names.length < all;
  }
  tbody.addEventListener("change", function (e) { if (e.target.matches("input.select")) updateSelection(); });
  selectPage.addEventListener("change", function () {
    rows().forEach(function (r) { r.querySelector("input.select").checked = selectPage.checked; });
    updateSelection();
  });

  // -- bulk actions ------------------------------------------------------------------------------
  // hubApi, but a 429 (too many starts at once) is waited out and retried, as JupyterHub asks.
  function call(method, path) {
    return api(method, path).catch(function (e) {
      if (e.status !== 429) throw e;
      return new Promise(function (resolve) { setTimeout(resolve, (e.retryAfter || 5) * 1000); })
        .then(function () { return call(method, path); });
    });
  }
  // Run `action(name)` for every name, PARALLEL at a time; report progress and failures.
  function runBulk(verb, names, action) {
    var done = 0, failures = [], next = 0;
    if (!names.length) { status(verb + ": nothing to do, no user matches."); return Promise.resolve(); }
    status(verb + " 0 of " + names.length + "…");
    function worker() {
      if (next >= names.length) return Promise.resolve();
      var name = names[next++];
      return action(name).catch(function (e) { failures.push(name + ": " + e.message); }).then(function () {
        done++;
        status(verb + " " + done + " of " + names.length + "…");
        return worker();
      });
    }
    var workers = [];
    for (var i = 0; i < Math.min(PARALLEL, names.length); i++) workers.push(worker());
    return Promise.all(workers).then(function () {
      if (failures.length) status(verb + ": " + failures.length + " of " + names.length + " failed. " + failures.join("; "), true);
      else status(verb + ": done for " + names.length + " user" + (names.length === 1 ? "" : "s") + ".");
      watch();
    });
  }
  function startServer(name) {
    return call("POST", "/users/" + enc(name) + "/server").catch(function (e) {
      if (e.status === 400 && /already running|pending|under way/.test(e.message)) return null;  // nothing to do
      throw e;
    });
  }
  function stopServer(name) { return call("DELETE", "/users/" + enc(name) + "/server"); }
  function deleteUser(name) { return call("DELETE", "/users/" + enc(name)); }

  document.getElementById("start-selected").addEventListener("click", function () {
    runBulk("Starting", selected(), startServer);
  });
  document.getElementById("stop-selected").addEventListener("click", function () {
    runBulk("Stopping", selected(), stopServer);
  });
  document.getElementById("delete-selected").addEventListener("click", function () {
    var me = table.dataset.me;
    var names = selected().filter(function (n) { return n !== me; });
    if (!names.length) return status("You cannot delete yourself", true);
    if (!window.confirm("Delete " + names.length + " user(s): " + names.join(", ") + "?")) return;
    runBulk("Deleting", names, deleteUser).then(reloadSoon);
  });

  // "All" means every user that matches the search, on every page: their names come from the
  // REST API's ?state= filter, a page of 200 at a time.
  function matching(state) {
    var search = new URLSearchParams(window.location.search).get("search") || "";
    var names = [];
    function page(offset) {
      var query = new URLSearchParams({ state: state, offset: offset, limit: 200 });
      if (search) query.set("name_filter", search);
      return fetch(window.jhdata.base_url + "api/users?" + query, {
        credentials: "same-origin", headers: { Accept: "application/jupyterhub-pagination+json" },
      }).then(function (r) {
        if (!r.ok) throw new Error("Could not list users: " + r.statusText);
        return r.json();
      }).then(function (data) {
        data.items.forEach(function (u) { names.push(u.name); });
        return data._pagination.next ? page(data._pagination.next.offset) : names;
      });
    }
    return page(0);
  }
  function bulkAll(state, verb, question, action) {
    matching(state).then(function (names) {
      if (names.length && !window.confirm(question.replace("N", names.length))) return null;
      return runBulk(verb, names, action);
    }).catch(fail);
  }
  document.getElementById("start-all").addEventListener("click", function () {
    bulkAll("inactive", "Starting", "Start the servers of N user(s) that are not running?", startServer);
  });
  document.getElementById("stop-all").addEventListener("click", function () {
    bulkAll("active", "Stopping", "Stop the servers of N user(s)?", stopServer);
  });

  // -- live rows ---------------------------------------------------------------------------------
  // While a server on this page starts or stops, re-read the page every 2 s and swap the cells
  // that changed; otherwise every 30 s (relative times, servers started elsewhere).
  var LIVE_CELLS = ["td.state", "td.activity", "td.groups", "td.roles", "td.actions-cell", "td.usage"];
  var timer = null;
  function busy() {
    return rows().some(function (r) { return r.dataset.state === "pending" || r.dataset.state === "stopping"; });
  }
  function refreshRows() {
    // The rows shown, by name: a row that no longer matches the filter (a stopped server under
    // "Running") still gets its new state.
    var query = new URLSearchParams(rows().map(function (r) { return ["user", r.dataset.user]; }));
    if (!query.toString()) return Promise.resolve();
    return fetch(window.jhdata.base_url + "admin?" + query, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) throw new Error(r.statusText);
      return r.text();
    }).then(function (html) {
      var doc = new DOMParser().parseFromString(html, "text/html");
      doc.querySelectorAll("#users tbody tr[data-user]").forEach(function (fresh) {
        var row = rowOf(fresh.dataset.user);
        if (!row) return;
        row.dataset.state = fresh.dataset.state;
        LIVE_CELLS.forEach(function (selector) {
          var cell = row.querySelector(selector), update = fresh.querySelector(selector);
          if (!cell || !update || cell.innerHTML === update.innerHTML) return;
          var focused = cell.contains(document.activeElement) ? document.activeElement.className : null;
          cell.innerHTML = update.innerHTML;
          if (focused !== null) {  // keep keyboard focus on the same control (or the row's checkbox)
            var again = focused && cell.querySelector("." + focused.trim().split(/\s+/).join("."));
            (again || cell.querySelector("button, a") || row.querySelector("input.select")).focus();
          }
        });
      });
      if (window.swapUsageCharts) window.swapUsageCharts(doc, "#machine-usage .usage-charts");
    });
  }
  function schedule(delay) {
    clearTimeout(timer);
    timer = setTimeout(function () {
      refreshRows().catch(function () {}).then(function () { schedule(busy() ? 2000 : 30000); });
    }, delay);
  }
  function watch() { schedule(500); }  // right after an action: look again soon
  schedule(busy() ? 2000 : 30000);

  // -- sign-ups, new users, groups, shutdown -----------------------------------------------------
  document.querySelectorAll("#signups tr[data-signup]").forEach(function (row) {
    var name = row.dataset.signup;
    function decide(selector, status, verb) {
      var el = row.querySelector(selector);
      if (!el) return;
      el.addEventListener("click", function () {
        api("PATCH", "/signups/" + enc(name), { status: status }).then(function () {
          window.showStatus(verb + " " + name);
          reloadSoon();
        }).catch(fail);
      });
    }
    decide(".approve", "approved", "Approved");
    decide(".refuse", "refused", "Refused");
    var discard = row.querySelector(".discard");
    if (discard) discard.addEventListener("click", function () {
      if (!window.confirm("Forget the sign-up of " + name + "? They can sign up again.")) return;
      api("DELETE", "/signups/" + enc(name)).then(reloadSoon).catch(fail);
    });
  });

  document.getElementById("add-users").addEventListener("click", function () {
    var names = document.getElementById("new-users").value.split("\n").map(function (s) { return s.trim(); })
      .filter(Boolean);
    if (!names.length) return status("Enter at least one name", true);
    var admin = document.getElementById("new-admin").checked;
    api("POST", "/users", { usernames: names, admin: admin }).then(function (created) {
      status("Added " + created.length + " user(s)");
      reloadSoon();
    }).catch(fail);
  });

  document.getElementById("add-group").addEventListener("click", function () {
    var group = document.getElementById("group-name").value.trim();
    var members = document.getElementById("group-members").value.split(",").map(function (s) { return s.trim(); })
      .filter(Boolean);
    if (!group) return status("Enter a group name", true);
    var exists = !!document.querySelector('#groups li[data-group="' + CSS.escape(group) + '"]');
    var create = exists ? Promise.resolve() : api("POST", "/groups/" + enc(group));
    create.then(function () {
      return members.length ? api("POST", "/groups/" + enc(group) + "/users", { users: members }) : null;
    }).then(reloadSoon).catch(fail);
  });

  document.getElementById("shutdown").addEventListener("click", function () {
    if (!window.confirm("Shut down the hub? User servers keep running.")) return;
    api("POST", "/shutdown", { servers: false, proxy: false }).then(function () {
      status("The hub is shutting down.");
    }).catch(fail);
  });

  function refreshUsage() {
    fetch(window.jhdata.base_url + "admin/usage", { credentials: "same-origin" }).then(function (r) { return r.json(); })
      .then(function (usage) {
        rows().forEach(function (row) {
          var u = usage[row.dataset.user];
          row.querySelector(".memory").textContent = u ? (u.memory_bytes / 1048576).toFixed(0) + " MiB" : "";
          row.querySelector(".cpu").textContent = u ? u.cpu_percent + " %" : "";
        });
      }).catch(function () {});
  }
  refreshUsage();
  setInterval(refreshUsage, 3000);
  updateSelection();
})();
