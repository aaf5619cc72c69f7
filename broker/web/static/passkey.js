// WebAuthn ceremonies on the broker's own pages (a passkey at step-up; enrolling one in the portal; signing up).
// The options come from the server as JSON in <script type="application/json" id="...">, named by the form's
// data-passkey attribute; the credential goes back as JSON (binary values base64url) in the form's hidden
// "credential" field. Without JavaScript or WebAuthn the form is not offered (it stays hidden).
(function () {
  "use strict";
  function toBytes(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    var binary = atob(base64 + "===".slice((base64.length + 3) % 4));
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) { bytes[i] = binary.charCodeAt(i); }
    return bytes.buffer;
  }
  function toText(buffer) {
    var bytes = new Uint8Array(buffer), binary = "";
    for (var i = 0; i < bytes.length; i++) { binary += String.fromCharCode(bytes[i]); }
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function withIds(list) {
    return (list || []).map(function (c) { return Object.assign({}, c, { id: toBytes(c.id) }); });
  }
  function creation(o) {
    return Object.assign({}, o, { challenge: toBytes(o.challenge), user: Object.assign({}, o.user, { id: toBytes(o.user.id) }),
                                  excludeCredentials: withIds(o.excludeCredentials) });
  }
  function request(o) {
    return Object.assign({}, o, { challenge: toBytes(o.challenge), allowCredentials: withIds(o.allowCredentials) });
  }
  function asJson(credential) {
    var r = credential.response;
    var out = { id: credential.id, rawId: toText(credential.rawId), type: credential.type,
                clientExtensionResults: credential.getClientExtensionResults(),
                response: { clientDataJSON: toText(r.clientDataJSON) } };
    if (credential.authenticatorAttachment) { out.authenticatorAttachment = credential.authenticatorAttachment; }
    if (r.attestationObject) {
      out.response.attestationObject = toText(r.attestationObject);
      if (r.getTransports) { out.response.transports = r.getTransports(); }
    } else {
      out.response.authenticatorData = toText(r.authenticatorData);
      out.response.signature = toText(r.signature);
      if (r.userHandle) { out.response.userHandle = toText(r.userHandle); }
    }
    return JSON.stringify(out);
  }
  if (!window.PublicKeyCredential) { return; }
  document.querySelectorAll("form[data-passkey]").forEach(function (form) {
    form.hidden = false;
    form.addEventListener("submit", function (event) {
      if (form.dataset.sending) { return; }
      event.preventDefault();
      var problem = form.querySelector("[data-passkey-problem]");
      var options = JSON.parse(document.getElementById(form.dataset.passkey).textContent);
      // sign-up: the name typed on the page labels the new passkey in the authenticator (WebAuthn §5.4.3)
      var named = form.dataset.passkeyName && document.getElementById(form.dataset.passkeyName);
      var given = named ? named.value.replace(/\s+/g, " ").trim() : "";
      if (given && options.user) { options.user = Object.assign({}, options.user, { name: given, displayName: given }); }
      var ceremony = form.dataset.ceremony === "create"
        ? navigator.credentials.create({ publicKey: creation(options) })
        : navigator.credentials.get({ publicKey: request(options) });
      ceremony.then(function (credential) {
        form.querySelector("input[name=credential]").value = asJson(credential);
        form.dataset.sending = "1";
        form.submit();
      }, function () { if (problem) { problem.hidden = false; } });
    });
  });
})();
