// The home page's Share panel: shares of the user's server (with a user or a group), share links
// (share codes), and the servers others share with the user. All through the REST API. With
// named servers, #share-server chooses which of the user's servers the panel is about.
(function () {
  var api = window.hubApi, status = window.showStatus, me = window.hubUser;
  var chooser = document.getElementById("share-server");
  var server = "/" + encodeURIComponent(me) + "/";

  function when(iso) { return iso ? iso.slice(0, 16).replace("T", " ") + " UTC" : ""; }
  function cell(row, text) { var td = document.createElement("td"); td.textContent = text || ""; row.appendChild(td); return td; }
  function button(text, label, onclick) {
    var b = document.createElement("button");
    b.type = "button";
    b.className = "danger small";
    b.textContent = text;
    b.setAttribute("aria-label", label);
    b.addEventListener("click", onclick);
    return b;
  }
  function fail(e) { status(e.message, true); }

  function loadShares() {
    return api("GET", "/shares" + server).then(function (page) {
      var tbody = document.querySelector("#shares tbody");
      tbody.textContent = "";
      document.getElementById("no-shares").hidden = page.items.length > 0;
      document.getElementById("shares-table").hidden = page.items.length === 0;
      page.items.forEach(function (share) {
        var who = share.user ? share.user.name : "group " + share.group.name;
        var row = document.createElement("tr");
        row.dataset.who = who;
        cell(row, who);
        cell(row, when(share.created_at));
        var body = share.user ? { user: share.user.name } : { group: share.group.name };
        cell(row, "").appendChild(button("Stop sharing", "Stop sharing with " + who, function () {
          api("PATCH", "/shares" + server, body).then(function () { status("Stopped sharing with " + who); loadShares(); })
            .catch(fail);
        }));
        tbody.appendChild(row);
      });
    }).catch(fail);
  }

  function loadCodes() {
    return api("GET", "/share-codes" + server).then(function (page) {
      var tbody = document.querySelector("#codes tbody");
      tbody.textContent = "";
      document.getElementById("no-codes").hidden = page.items.length > 0;
      document.getElementById("codes-table").hidden = page.items.length === 0;
      page.items.forEach(function (code, i) {
        var row = document.createElement("tr");
        row.dataset.code = code.id;
        cell(row, "Link made " + when(code.created_at));
        cell(row, when(code.expires_at));
        cell(row, code.exchange_count + (code.exchange_count === 1 ? " time" : " times"));
        cell(row, "").appendChild(button("Revoke", "Revoke the link made " + when(code.created_at), function () {
          api("DELETE", "/share-codes" + server + "?id=" + encodeURIComponent(code.id))
            .then(function () { status("Link revoked"); document.getElementById("new-code").hidden = true; loadCodes(); })
            .catch(fail);
        }));
        tbody.appendChild(row);
      });
    }).catch(fail);
  }

  function loadSharedWithMe() {
    return api("GET", "/users/" + encodeURIComponent(me) + "/shared").then(function (page) {
      var list = document.getElementById("shared-with-me");
      list.textContent = "";
      document.getElementById("none-shared-with-me").hidden = page.items.length > 0;
      page.items.forEach(function (share) {
        var li = document.createElement("li"), a = document.createElement("a");
        var owner = share.server.user.name + (share.server.name ? "/" + share.server.name : "");
        a.href = share.server.url;
        a.textContent = owner + "'s server";
        li.appendChild(a);
        li.appendChild(document.createTextNode(share.server.ready ? " (running)" : " (not running)"));
        list.appendChild(li);
      });
    }).catch(fail);
  }

  document.getElementById("share-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var kind = document.querySelector("input[name=share-kind]:checked").value;
    var name = document.getElementById("share-name").value.trim();
    var body = {};
    body[kind] = name;
    api("POST", "/shares" + server, body).then(function () {
      status("Shared with " + (kind === "group" ? "group " : "") + name);
      document.getElementById("share-name").value = "";
      loadShares();
    }).catch(fail);
  });

  document.getElementById("code-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var expires = parseInt(document.getElementById("code-expires").value, 10);
    api("POST", "/share-codes" + server, { expires_in: expires }).then(function (code) {
      var link = document.getElementById("code-link");
      link.value = new URL(code.accept_url, window.location.href).href;
      document.getElementById("new-code").hidden = false;
      link.focus();
      link.select();
      status("Share link made");
      loadCodes();
    }).catch(fail);
  });

  if (chooser) {
    chooser.addEventListener("change", function () {
      server = "/" + encodeURIComponent(me) + "/" + encodeURIComponent(chooser.value);
      document.getElementById("new-code").hidden = true;
      status("");
      loadShares();
      loadCodes();
    });
  }

  loadShares();
  loadCodes();
  loadSharedWithMe();
})();
