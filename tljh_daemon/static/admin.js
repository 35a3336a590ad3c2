(function () {
  var api = window.hubApi, status = window.showStatus;
  function reloadSoon() { setTimeout(function () { window.location.reload(); }, 300); }
  function fail(e) { status(e.message, true); }
  function enc(name) { return encodeURIComponent(name); }

  document.querySelectorAll("#users tr[data-user]").forEach(function (row) {
    var name = row.dataset.user;
    function on(selector, handler) {
      var el = row.querySelector(selector);
      if (el) el.addEventListener("click", handler);
    }
    on(".start", function () {
      status("Starting the server of " + name + "…");
      api("POST", "/users/" + enc(name) + "/server").then(waitReady).catch(fail);
    });
    on(".stop", function () {
      status("Stopping the server of " + name + "…");
      api("DELETE", "/users/" + enc(name) + "/server").then(reloadSoon).catch(fail);
    });
    on(".toggle-admin", function (e) {
      var admin = e.target.dataset.admin !== "true";
      api("PATCH", "/users/" + enc(name), { admin: admin }).then(reloadSoon).catch(fail);
    });
    on(".delete", function () {
      if (!window.confirm("Delete user " + name + "?")) return;
      api("DELETE", "/users/" + enc(name)).then(reloadSoon).catch(fail);
    });
    function waitReady() {
      var source = new EventSource(window.jhdata.base_url + "api/users/" + enc(name) + "/server/progress");
      source.onmessage = function (e) {
        var event = JSON.parse(e.data);
        status(name + ": " + event.message, !!event.failed);
        if (event.ready || event.failed) { source.close(); reloadSoon(); }
      };
    }
  });

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
        document.querySelectorAll("#users tr[data-user]").forEach(function (row) {
          var u = usage[row.dataset.user];
          row.querySelector(".memory").textContent = u ? (u.memory_bytes / 1048576).toFixed(0) + " MiB" : "";
          row.querySelector(".cpu").textContent = u ? u.cpu_percent + " %" : "";
        });
      }).catch(function () {});
  }
  refreshUsage();
  setInterval(refreshUsage, 3000);
})();
