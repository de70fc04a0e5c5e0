// Passkeys (WebAuthn) as progressive enhancement: forms marked data-passkey stay hidden
// without JavaScript or without WebAuthn, and password sign-in never depends on them. The
// options come from the form's data-options (JSON); the browser's answer is posted as JSON
// in the form's hidden "credential" field, with the form's CSRF token.
(function () {
  "use strict";
  if (!window.PublicKeyCredential || !navigator.credentials) return;

  function toBytes(text) {
    var b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    b64 += "===".slice((b64.length + 3) % 4);
    var raw = atob(b64), out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out.buffer;
  }
  function toText(buffer) {
    var bytes = new Uint8Array(buffer), raw = "";
    for (var i = 0; i < bytes.length; i++) raw += String.fromCharCode(bytes[i]);
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function descriptors(list) {
    return (list || []).map(function (d) {
      return Object.assign({}, d, { id: toBytes(d.id) });
    });
  }
  function creationOptions(json) {
    var o = Object.assign({}, json);
    o.challenge = toBytes(json.challenge);
    o.user = Object.assign({}, json.user, { id: toBytes(json.user.id) });
    o.excludeCredentials = descriptors(json.excludeCredentials);
    return o;
  }
  function requestOptions(json) {
    var o = Object.assign({}, json);
    o.challenge = toBytes(json.challenge);
    o.allowCredentials = descriptors(json.allowCredentials);
    return o;
  }
  function serialize(credential) {
    var r = credential.response, response = { clientDataJSON: toText(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toText(r.attestationObject);
      response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      response.authenticatorData = toText(r.authenticatorData);
      response.signature = toText(r.signature);
      if (r.userHandle) response.userHandle = toText(r.userHandle);
    }
    return JSON.stringify({
      id: credential.id, rawId: toText(credential.rawId), type: credential.type,
      response: response, authenticatorAttachment: credential.authenticatorAttachment,
      clientExtensionResults: credential.getClientExtensionResults()
    });
  }
  function post(form, credential) {
    form.querySelector("input[name=credential]").value = serialize(credential);
    form.submit();
  }
  function report(form, message) {
    var note = form.querySelector("[data-passkey-status]");
    if (note) note.textContent = message;
  }

  var pending = null;  // the conditional request, aborted before a modal one starts

  document.querySelectorAll("form[data-passkey]").forEach(function (form) {
    var json = JSON.parse(form.getAttribute("data-options"));
    var kind = form.getAttribute("data-passkey");
    form.hidden = false;
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (pending) { pending.abort(); pending = null; }
      var ask = kind === "create"
        ? navigator.credentials.create({ publicKey: creationOptions(json) })
        : navigator.credentials.get({ publicKey: requestOptions(json) });
      ask.then(function (credential) { post(form, credential); }, function () {
        // The page's words, in its language (data-cancelled), else these.
        var status = form.querySelector("[data-passkey-status]");
        report(form, (status && status.getAttribute("data-cancelled")) ||
               "No passkey was used. Try again, or use another way.");
      });
    });
    if (kind === "conditional" && PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then(function (available) {
        if (!available) return;
        pending = new AbortController();
        navigator.credentials.get({
          mediation: "conditional", publicKey: requestOptions(json), signal: pending.signal
        }).then(function (credential) { post(form, credential); }, function () {});
      });
    }
  });
})();
