// A person at a browser, scripted with fetch: follows an authorization URL through frontdesk's real sign-in and
// consent pages (cookies kept, redirects followed by hand, CSRF fields read from the HTML) and stops at the redirect
// back to the client, whose URL carries the code. The twin of tests/scripted_person.py; rp.mjs and mcp_client.mjs
// both use it.

const REQUEST_TIMEOUT_MS = 10_000;
const MAX_HOPS = 12;

class Browser {
  constructor(origin) {
    this.origin = origin;
    this.cookies = new Map(); // name → { value, path }
  }

  cookieHeader(url) {
    const pairs = [];
    for (const [name, { value, path }] of this.cookies) {
      if (url.pathname === path || url.pathname.startsWith(path.endsWith('/') ? path : `${path}/`)) {
        pairs.push(`${name}=${value}`);
      }
    }
    return pairs.join('; ');
  }

  remember(url, response) {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';').map((s) => s.trim());
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      let path = url.pathname.replace(/\/[^/]*$/, '') || '/';
      let expired = false;
      for (const attr of attrs) {
        const [k, v = ''] = attr.split('=');
        if (k.toLowerCase() === 'path') path = v;
        if (k.toLowerCase() === 'max-age' && Number(v) <= 0) expired = true;
      }
      if (expired || value === '' || value === '""') this.cookies.delete(name);
      else this.cookies.set(name, { value, path });
    }
  }

  async request(url, init = {}) {
    if (url.origin !== this.origin) throw new Error(`refusing to send cookies to another origin: ${url}`);
    const headers = new Headers(init.headers);
    const cookie = this.cookieHeader(url);
    if (cookie) headers.set('cookie', cookie);
    const response = await fetch(url, {
      ...init,
      headers,
      redirect: 'manual',
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    this.remember(url, response);
    return response;
  }
}

function decodeEntities(s) {
  return s
    .replace(/&#(\d+);/g, (_, n) => String.fromCodePoint(Number(n)))
    .replaceAll('&quot;', '"')
    .replaceAll('&lt;', '<')
    .replaceAll('&gt;', '>')
    .replaceAll('&amp;', '&');
}

/** The visible text of a page, whitespace collapsed (what the person reads on the consent page). */
function visibleText(html) {
  const text = html
    .replace(/<(script|style)\b[\s\S]*?<\/\1>/gi, ' ')
    .replace(/<[^>]+>/g, ' ');
  return decodeEntities(text).split(/\s+/).filter(Boolean).join(' ');
}

function parseForm(html) {
  const form = html.match(/<form\b[^>]*\bmethod="post"[^>]*\baction="([^"]*)"[^>]*>([\s\S]*?)<\/form>/i);
  if (!form) return null;
  const hidden = {};
  for (const input of form[2].matchAll(/<input\b[^>]*>/gi)) {
    const tag = input[0];
    if (!/\btype="hidden"/i.test(tag)) continue;
    const name = tag.match(/\bname="([^"]*)"/i);
    const value = tag.match(/\bvalue="([^"]*)"/i);
    if (name) hidden[decodeEntities(name[1])] = value ? decodeEntities(value[1]) : '';
  }
  return {
    action: decodeEntities(form[1]),
    hidden,
    password: /\bname="password"/i.test(form[2]),
    consent: /\bname="decision"[^>]*\bvalue="allow"/i.test(form[2]),
  };
}

/**
 * Signs in (when asked) and allows (when asked) until frontdesk redirects to redirectUri.
 * Returns { callback: URL, consentPages: [visible text of each consent page answered] }.
 * Options: `steps`, an array each hop and form is recorded in; `seeOtherOnly`, refuse any redirect but 303.
 */
export async function signInAndConsent(
  authorizationUrl,
  redirectUri,
  username,
  password,
  { steps = [], seeOtherOnly = false } = {},
) {
  const browser = new Browser(authorizationUrl.origin);
  const consentPages = [];
  let url = authorizationUrl;
  let response = await browser.request(url);
  for (let hop = 0; hop < MAX_HOPS; hop++) {
    if ([302, 303].includes(response.status)) {
      const location = new URL(response.headers.get('location'), url);
      if (seeOtherOnly && response.status !== 303) {
        throw new Error(`expected 303 See Other, got ${response.status} to ${location}`);
      }
      if (location.href.startsWith(`${redirectUri}?`)) {
        steps.push(`${response.status} → redirect_uri`);
        return { callback: location, consentPages };
      }
      if (location.origin !== authorizationUrl.origin) throw new Error(`unexpected redirect to ${location}`);
      steps.push(`${response.status} → ${location.pathname}`);
      url = location;
      response = await browser.request(url);
      continue;
    }
    const body = await response.text();
    if (response.status !== 200) throw new Error(`${response.status} at ${url.pathname}: ${body.slice(0, 300)}`);
    const form = parseForm(body);
    if (!form || !form.hidden.csrf) throw new Error(`no form with a csrf field at ${url.pathname}`);
    const fields = new URLSearchParams(form.hidden);
    if (form.password) {
      fields.set('username', username);
      fields.set('password', password);
      steps.push(`sign-in form at ${url.pathname}`);
    } else if (form.consent) {
      fields.set('decision', 'allow');
      consentPages.push(visibleText(body));
      steps.push(`consent form at ${url.pathname}`);
    } else {
      throw new Error(`a form that is neither sign-in nor consent at ${url.pathname}`);
    }
    url = new URL(form.action, url);
    response = await browser.request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: fields.toString(),
    });
  }
  throw new Error(`no redirect to ${redirectUri} after ${MAX_HOPS} hops`);
}
