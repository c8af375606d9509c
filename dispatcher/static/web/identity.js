// The token field in the page's header. A pasted token is checked on the server first
// (GET /api/v1/whoami: subject, roles, expiry) and kept for this tab only if it is valid
// (session.js); the panel then says who the user is and until when. A token the server
// refuses later (expired, or the service's secret changed) is reported here, whichever call
// found out. "Forget token" removes it and reloads the page, so that nothing it opened stays
// on screen. The token itself is never shown again, nor put anywhere but the header of the
// page's own requests.

import {el, clear} from "./dom.js";
import {getJSON} from "./api.js";
import {forgetToken, storeToken, storedToken, IDENTITY_CHANGED, TOKEN_REFUSED} from "./session.js";

// setTimeout's limit; a later expiry is checked again when the limit is reached.
const MAX_TIMER_MS = 2 ** 31 - 1;

function when(iso) {
  return iso ? `${iso.slice(0, 16).replace("T", " ")} UTC` : "never";
}

function remaining(seconds) {
  if (seconds === null || seconds === undefined) return "";
  if (seconds < 90) return `in ${seconds} s`;
  if (seconds < 5400) return `in ${Math.round(seconds / 60)} min`;
  if (seconds < 172800) return `in ${Math.round(seconds / 3600)} h`;
  return `in ${Math.round(seconds / 86400)} days`;
}

// "Bearer eyJ…" or a token pasted with quotes or line breaks: the token alone.
function cleaned(text) {
  return text.trim().replace(/^bearer\s+/i, "").replace(/^["']|["']$/g, "").replace(/\s+/g, "");
}

export function createIdentityPanel(root, {api}) {
  const input = el("input", {type: "password", id: "token-input", class: "token-input", autocomplete: "off",
    spellcheck: "false", placeholder: "paste a token for proprietary data", "aria-label": "token",
    "aria-describedby": "token-status"});
  const use = el("button", {type: "button", id: "token-use"}, "Use token");
  const forget = el("button", {type: "button", id: "token-forget", hidden: true}, "Forget token");
  const status = el("span", {id: "token-status", class: "token-status", "aria-live": "polite"});
  clear(root).append(input, use, forget, status);
  const state = {expiryTimer: null};

  function show({signedIn, refused, text}) {
    input.hidden = signedIn;
    use.hidden = signedIn;
    forget.hidden = !storedToken();
    status.classList.toggle("refused", Boolean(refused));
    status.textContent = text;
    root.dataset.state = refused ? "refused" : signedIn ? "signed-in" : "anonymous";
  }

  function showAnonymous() {
    show({signedIn: false, text: "Public data only."});
  }

  function showRefused(message) {
    clearTimeout(state.expiryTimer);
    show({signedIn: false, refused: true, text: message});
  }

  function showSignedIn(who) {
    const roles = who.roles.length ? who.roles.join(", ") : "none";
    show({signedIn: true, text: `Signed in as ${who.subject}, roles: ${roles}, expires ${when(who.expires)}` +
      (who.expires_in_s !== null ? ` (${remaining(who.expires_in_s)})` : "")});
    // Say so when it expires, rather than at the next failed request.
    clearTimeout(state.expiryTimer);
    if (who.expires_in_s !== null) {
      state.expiryTimer = setTimeout(check, Math.min(MAX_TIMER_MS, (who.expires_in_s + 1) * 1000));
    }
  }

  // The stored token, as the server sees it now.
  async function check() {
    if (!storedToken()) return showAnonymous();
    try {
      showSignedIn(await getJSON(`${api}/whoami`));
    } catch (error) {
      // A 401 was announced (TOKEN_REFUSED) and is shown by the listener below.
      if (error.status !== 401) show({signedIn: false, refused: true, text: `The token cannot be checked: ${error.message}`});
    }
  }

  async function useToken() {
    const token = cleaned(input.value);
    if (!token) {
      showRefused("Paste a token first.");
      return;
    }
    use.disabled = true;
    try {
      const who = await getJSON(`${api}/whoami`, {token});
      storeToken(token);
      input.value = "";
      showSignedIn(who);
      document.dispatchEvent(new CustomEvent(IDENTITY_CHANGED, {detail: who}));
    } catch (error) {
      // Not kept: the stored token (if any) stays in use.
      showRefused(error.status === 401 ? `This token was refused: ${error.body.error}` : error.message);
    } finally {
      use.disabled = false;
    }
  }

  use.addEventListener("click", useToken);
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter") useToken();
  });
  forget.addEventListener("click", () => {
    forgetToken();
    window.location.reload();
  });
  document.addEventListener(TOKEN_REFUSED, (event) => {
    showRefused(`Your token was refused: ${event.detail.message}.`);
  });
  return {check};
}
