// The token page: API tokens (create with a note, expiry and scopes; list; revoke) and the
// OAuth applications the user authorized (revoke). All through the REST API with the XSRF header.
(function () {
  var api = window.hubApi, status = window.showStatus, user = encodeURIComponent(window.hubUser);
  var tbody = document.querySelector("#tokens tbody");

  function cell(row, text) { var td = document.createElement("td"); td.textContent = text || ""; row.appendChild(td); return td; }

  function scopeList(scopes) {
    var ul = document.createElement("ul");
    ul.className = "scope-list";
    scopes.forEach(function (s) { var li = document.createElement("li"); li.textContent = s; ul.appendChild(li); });
    return ul;
  }

  // "2026-12-05T07:53:30.402573Z" -> "2026-12-05 07:53 UTC"
  function when(iso) { return iso.slice(0, 16).replace("T", " ") + " UTC"; }

  function revoke(id) { return api("DELETE", "/users/" + user + "/tokens/" + encodeURIComponent(id)); }

  function load() {
    return api("GET", "/users/" + user + "/tokens").then(function (data) {
      var own = data.api_tokens.filter(function (t) { return !t.oauth_client; });
      tbody.textContent = "";
      document.getElementById("no-tokens").hidden = own.length > 0;
      own.forEach(function (t) {
        var row = document.createElement("tr");
        row.dataset.token = t.id;
        var note = cell(row, t.note), prefix = document.createElement("small");
        prefix.className = "muted token-prefix";
        prefix.textContent = "starts with " + t.prefix;
        note.appendChild(document.createElement("br"));
        note.appendChild(prefix);
        cell(row, "").appendChild(scopeList(t.scopes));
        cell(row, when(t.created)); cell(row, t.expires_at ? when(t.expires_at) : "never");
        var button = document.createElement("button");
        button.type = "button";
        button.textContent = "Revoke";
        button.className = "revoke danger small";
        button.setAttribute("aria-label", "Revoke " + (t.note || t.prefix));
        button.addEventListener("click", function () {
          revoke(t.id).then(function () { status("Revoked"); load(); })
            .catch(function (e) { status(e.message, true); });
        });
        cell(row, "").appendChild(button);
        tbody.appendChild(row);
      });
    }).catch(function (e) { status(e.message, true); });
  }

  document.getElementById("token-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var body = { note: document.getElementById("note").value };
    var expires = document.getElementById("expires").value;
    var scopes = document.getElementById("scopes").value.split(/[\s,]+/).filter(Boolean);
    if (expires) body.expires_in = parseInt(expires, 10);
    if (scopes.length) body.scopes = scopes;
    api("POST", "/users/" + user + "/tokens", body).then(function (t) {
      document.getElementById("token-value").textContent = t.token;
      document.getElementById("new-token").hidden = false;
      status("Token created");
      load();
    }).catch(function (e) { status(e.message, true); });
  });

  document.querySelectorAll("#oauth-apps tr[data-token]").forEach(function (row) {
    row.querySelector("button.revoke-app").addEventListener("click", function () {
      revoke(row.dataset.token).then(function () {
        row.remove();
        if (!document.querySelector("#oauth-apps tr[data-token]")) document.getElementById("no-apps").hidden = false;
        status("Revoked access for " + row.dataset.client);
      }).catch(function (e) { status(e.message, true); });
    });
  });
  load();
})();
