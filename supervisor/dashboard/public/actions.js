// Fleet actions: a confirmation dialog, the POST (with the session's CSRF token) and a toast.

const csrf = document.querySelector('meta[name="csrf-token"]').content;

export function toast(text, kind = 'info') {
  const box = document.getElementById('toasts');
  const item = document.createElement('div');
  item.className = `toast ${kind}`;
  item.textContent = text;
  box.append(item);
  setTimeout(() => item.classList.add('leaving'), 4500);
  setTimeout(() => item.remove(), 5000);
}

function confirmDialog(title, text, okLabel) {
  const dialog = document.getElementById('confirm');
  document.getElementById('confirm-title').textContent = title;
  document.getElementById('confirm-text').textContent = text;
  document.getElementById('confirm-ok').textContent = okLabel;
  dialog.returnValue = '';
  dialog.showModal();
  return new Promise((resolve) => dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true }));
}

export function post(path) {
  return fetch(path, { method: 'POST', headers: { 'x-csrf-token': csrf }, credentials: 'same-origin' });
}

const ACTIONS = {
  drain: {
    title: (target) => `Drain ${target}?`,
    text: (target) => `${target} stops getting new requests; its in-flight requests finish. It stays out of rotation until you put it back.`,
    path: (target) => `/api/workers/${encodeURIComponent(target)}/drain`,
    done: (target) => `${target} is draining`,
  },
  ready: {
    title: (target) => `Put ${target} back into rotation?`,
    text: (target) => `The proxies send requests to ${target} again.`,
    path: (target) => `/api/workers/${encodeURIComponent(target)}/ready`,
    done: (target) => `${target} is back in rotation`,
  },
  recycle: {
    title: (target) => `Recycle ${target}?`,
    text: (target) => `${target} is drained, restarted through PM2 and put back once healthy. Never more than the pool's maxUnavailable at a time.`,
    path: (target) => `/api/workers/${encodeURIComponent(target)}/recycle`,
    done: (target, body) => (body.alreadyPending ? `${target} already has a recycle queued` : `${target} queued for recycling`),
  },
  roll: {
    title: (target) => `Roll pool ${target}?`,
    text: (target) => `Every worker of ${target} is recycled one after another (maxUnavailable at a time).`,
    path: (target) => `/api/pools/${encodeURIComponent(target)}/roll`,
    done: (target, body) => `rolling ${target}: ${(body.queued ?? []).join(', ') || 'nothing to do'}`,
  },
};

export async function runAction(action, target) {
  const spec = ACTIONS[action];
  if (!(await confirmDialog(spec.title(target), spec.text(target), action[0].toUpperCase() + action.slice(1)))) return;
  try {
    const response = await post(spec.path(target));
    const body = await response.json().catch(() => ({}));
    if (response.ok) toast(spec.done(target, body), 'ok');
    else toast(`${action} ${target} refused: ${body.error ?? `HTTP ${response.status}`}`, 'error');
  } catch (error) {
    toast(`${action} ${target} failed: ${error.message}`, 'error');
  }
}
