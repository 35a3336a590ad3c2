(function () {
  var api = window.hubApi, status = window.showStatus, user = encodeURIComponent(window.hubUser);
  var tbody = document.querySelector("#tokens tbody");

  function cell(row, text) { var td = document.createElement("td"); td.textContent = text || ""; row.appendChild(td); return td; }

  function load() {
    api("GET", "/users/" + user + "/tokens").then(function (data) {
      tbody.textContent = "";
      data.api_tokens.forEach(function (t) {
        var row = document.createElement("tr");
        row.dataset.token = t.id;
        cell(row, t.note); cell(row, t.prefix); cell(row, t.created); cell(row, t.expires_at || "never");
        var button = document.createElement("button");
        button.textContent = "Revoke";
        button.className = "revoke secondary";
        button.addEventListener("click", function () {
          api("DELETE", "/users/" + user + "/tokens/" + t.id).then(function () { status("Revoked"); load(); })
            .catch(function (e) { status(e.message, true); });
        });
        cell(row, "").appendChild(button);
        tbody.appendChild(row);
      });
    }).catch(function (e) { status(e.message, true); });
  }

  document.getElementById("create-token").addEventListener("click", function () {
    var body = { note: document.getElementById("note").value };
    var expires = document.getElementById("expires").value;
    if (expires) body.expires_in = parseInt(expires, 10);
    api("POST", "/users/" + user + "/tokens", body).then(function (t) {
      document.getElementById("token-value").textContent = t.token;
      document.getElementById("new-token").hidden = false;
      load();
    }).catch(function (e) { status(e.message, true); });
  });
  load();
})();
