import { html, type SafeHtml } from '../html.ts';

export const STATIC_PREFIX = '/_static/';

/** Every page links its assets from the proxy's static prefix, so they never reach a worker. */
export function layout(title: string, body: SafeHtml, crumbs: SafeHtml = html``): Buffer {
  const page = html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · Switchyard</title>
<link rel="stylesheet" href="${STATIC_PREFIX}switchyard.css">
<link rel="icon" href="${STATIC_PREFIX}favicon.svg" type="image/svg+xml">
<script src="${STATIC_PREFIX}switchyard.js" defer></script>
</head>
<body>
<header class="top"><a class="brand" href="/"><img src="${STATIC_PREFIX}logo.svg" alt="" width="20" height="20"> Switchyard</a>${crumbs}</header>
<main>
${body}
</main>
<footer>served by a single-threaded worker</footer>
</body>
</html>
`;
  return Buffer.from(page.value, 'utf8');
}
