// Conveniences only: every console flow works without this script.
// - `button[data-copy]` copies the text of the element whose id it names.
// - `input[type=file][data-read-into]` reads the chosen file into the textarea it names.
// - `details[data-fold-narrow]` (the Receipts filters, served open) is folded on a narrow screen.
'use strict';

const narrow = window.matchMedia('(max-width: 40rem)');
const fold = () => {
  for (const details of document.querySelectorAll('details[data-fold-narrow]')) details.open = !narrow.matches;
};
fold();
narrow.addEventListener('change', fold);

document.addEventListener('click', (event) => {
  const button = event.target.closest('button[data-copy]');
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  if (!source || !navigator.clipboard) return;
  navigator.clipboard.writeText(source.textContent).then(() => {
    const label = button.textContent;
    button.textContent = 'Copied';
    setTimeout(() => { button.textContent = label; }, 1500);
  });
});

document.addEventListener('change', (event) => {
  const input = event.target;
  if (!(input instanceof HTMLInputElement) || !input.dataset.readInto || !input.files || !input.files[0]) return;
  const target = document.getElementById(input.dataset.readInto);
  input.files[0].text().then((text) => { if (target) target.value = text; });
});
