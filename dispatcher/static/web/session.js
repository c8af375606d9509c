// The user's token for this browser tab. It lives in sessionStorage only: it survives a
// reload of the tab (a reproducible link reopened in it still shows proprietary results) and
// is gone when the tab closes; it is never a cookie (so no request carries it unless the page
// adds it), never in localStorage, never in a URL. Every module reads it here at each
// request, so all of them send the token the user set last.

const KEY = "xoda.token";

function storage() {
  try {
    return window.sessionStorage;
  } catch (error) {
    // Storage disabled by the browser's settings: the page works for public data only.
    return null;
  }
}

export function storedToken() {
  const store = storage();
  return (store && store.getItem(KEY)) || null;
}

export function storeToken(token) {
  const store = storage();
  if (!store) throw new Error("this browser does not let the page keep a token (session storage is disabled)");
  store.setItem(KEY, token);
}

export function forgetToken() {
  const store = storage();
  if (store) store.removeItem(KEY);
}

// The header that carries a token (the stored one unless another is given), or none.
export function authorization(token = storedToken()) {
  return token ? {Authorization: `Bearer ${token}`} : {};
}

// What the page says on a 403: never the server's details, only what the user can do.
export function notAvailableMessage() {
  return storedToken() ?
    "Not available to you: the token in use does not give access to these data." :
    "Not available to you: these data are not public yet. If they are yours (or your team's), " +
    "paste your token at the top of the page.";
}

// Announced on `document` so that the token panel and the tabs can react.
export const TOKEN_REFUSED = "xoda:token-refused";     // detail: {message}
export const IDENTITY_CHANGED = "xoda:identity";       // detail: the whoami answer
