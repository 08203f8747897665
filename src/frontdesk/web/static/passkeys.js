// Passkeys (W3C WebAuthn): sign in with one on the sign-in page, add one on the account page.
//
// Progressive: the forms this script drives stay hidden unless the browser can use passkeys, and the password form
// never needs it. A form marked data-passkey fetches its options (a fresh, single-use challenge) from data-options,
// asks the browser for a credential, puts the answer in its hidden "credential" field and submits as usual, so the
// server answers with a page or a redirect like any other form.
"use strict";

(() => {
  if (!window.PublicKeyCredential || !navigator.credentials) {
    return;
  }

  const fromB64url = (text) => {
    const base64 = text.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(text.length / 4) * 4, "=");
    return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0)).buffer;
  };
  const toB64url = (buffer) => {
    let binary = "";
    for (const byte of new Uint8Array(buffer)) {
      binary += String.fromCharCode(byte);
    }
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  };
  const withIds = (list) => (list || []).map((c) => ({ ...c, id: fromB64url(c.id) }));

  const creationOptions = (json) => ({
    ...json,
    challenge: fromB64url(json.challenge),
    user: { ...json.user, id: fromB64url(json.user.id) },
    excludeCredentials: withIds(json.excludeCredentials),
  });
  const requestOptions = (json) => ({
    ...json,
    challenge: fromB64url(json.challenge),
    allowCredentials: withIds(json.allowCredentials),
  });

  const asJSON = (credential) => {
    const r = credential.response;
    const response = { clientDataJSON: toB64url(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toB64url(r.attestationObject);
      response.transports = typeof r.getTransports === "function" ? r.getTransports() : [];
    } else {
      response.authenticatorData = toB64url(r.authenticatorData);
      response.signature = toB64url(r.signature);
      if (r.userHandle) {
        response.userHandle = toB64url(r.userHandle);
      }
    }
    return {
      id: credential.id,
      rawId: toB64url(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || undefined,
      clientExtensionResults: credential.getClientExtensionResults(),
      response,
    };
  };

  // Plain words for what the browser reports (https://w3c.github.io/webauthn/#sctn-createCredential).
  const explain = (error, registering) => {
    if (error && error.name === "NotAllowedError") {
      return "The passkey request was cancelled or timed out. Try again" + (registering ? "." : ", or use your password.");
    }
    if (error && error.name === "InvalidStateError") {
      return "This device already has a passkey for your account.";
    }
    return (error && error.message) || "Something went wrong with the passkey. Try again.";
  };

  const fetchOptions = async (form) => {
    const body = new URLSearchParams({ csrf: form.elements.csrf.value });
    const response = await fetch(form.dataset.options, {
      method: "POST",
      body,
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
    const data = await response.json();
    if (data.redirect) {
      window.location.assign(data.redirect);
      return null;
    }
    if (!response.ok) {
      throw new Error(data.message || "The passkey request failed. Reload the page and try again.");
    }
    return data;
  };

  const say = (form, text) => {
    const status = form.querySelector("[data-passkey-status]");
    if (status) {
      status.textContent = text;
      status.hidden = !text;
    }
  };

  const run = async (form, button) => {
    const registering = form.dataset.passkey === "register";
    button.disabled = true;
    say(form, "");
    try {
      const options = await fetchOptions(form);
      if (!options) {
        return;
      }
      const credential = registering
        ? await navigator.credentials.create({ publicKey: creationOptions(options) })
        : await navigator.credentials.get({ publicKey: requestOptions(options) });
      form.elements.credential.value = JSON.stringify(asJSON(credential));
      form.submit();
    } catch (error) {
      say(form, explain(error, registering));
      button.disabled = false;
    }
  };

  for (const form of document.querySelectorAll("form[data-passkey]")) {
    const section = form.closest("[data-passkey-section]");
    if (section) {
      section.hidden = false;
    }
    const button = form.querySelector("button[type=submit]");
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      run(form, button);
    });
  }
  for (const note of document.querySelectorAll("[data-passkey-unsupported]")) {
    note.hidden = true;
  }
})();
