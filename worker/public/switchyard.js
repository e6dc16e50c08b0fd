// Progressive enhancement only: every page works without this script.
document.addEventListener('click', (event) => {
  const button = event.target.closest('button[data-copy]');
  if (!button || !navigator.clipboard) return;
  navigator.clipboard.writeText(button.dataset.copy).then(() => {
    const label = button.textContent;
    button.textContent = 'copied';
    setTimeout(() => (button.textContent = label), 1200);
  });
});
