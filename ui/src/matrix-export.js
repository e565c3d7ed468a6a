// The view as a picture: an SVG drawn from what is on screen (the columns, the cells shown
// with their colours, expanded sub-techniques), the legend below the matrix (never over it),
// and a PNG rasterised from that SVG in a canvas. Nothing leaves the browser.

const COL = 168; // column width
const GAP = 6;
const PAD = 12;
const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
const SIZE = 10.5;
const LINE = 13;

let measurer = null;
function textWidth(text, size = SIZE, weight = 'normal') {
  if (!measurer) measurer = document.createElement('canvas').getContext('2d');
  measurer.font = `${weight} ${size}px ${FONT}`;
  return measurer.measureText(text).width;
}

function wrap(text, width, size = SIZE, weight = 'normal') {
  const lines = [];
  let line = '';
  for (const word of String(text).split(/\s+/)) {
    const next = line ? `${line} ${word}` : word;
    if (line && textWidth(next, size, weight) > width) {
      lines.push(line);
      line = word;
    } else {
      line = next;
    }
  }
  if (line) lines.push(line);
  return lines.length ? lines : [''];
}

function esc(text) {
  return String(text)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

function textLines(lines, x, y, { size = SIZE, weight = 'normal', fill = '#1f2328' } = {}) {
  return lines
    .map(
      (l, i) =>
        `<text x="${x}" y="${y + i * LINE}" font-size="${size}" font-weight="${weight}" fill="${fill}">${esc(l)}</text>`,
    )
    .join('');
}

function cssColor(value, fallback) {
  return value && value !== 'transparent' && value !== 'rgba(0, 0, 0, 0)' ? value : fallback;
}

function visible(node) {
  return node.offsetParent !== null;
}

// tactics: the page's .tactic sections; legend: its .item elements.
export function matrixSvg({ title, subtitle, legend, tactics }) {
  const parts = [];
  const width = PAD * 2 + tactics.length * COL + (tactics.length - 1) * GAP;
  let y = PAD + 14;
  parts.push(textLines([title], PAD, y, { size: 15, weight: '600' }));
  y += 8;
  const sub = wrap(subtitle, width - PAD * 2, 11);
  parts.push(textLines(sub, PAD, y + LINE, { size: 11, fill: '#59636e' }));
  y += LINE * sub.length + 12;
  const top = y;
  let bottom = top;
  tactics.forEach((sec, i) => {
    const x = PAD + i * (COL + GAP);
    let cy = top;
    const name = sec.querySelector('h2 a').textContent;
    const counts = sec.querySelector('.counts').textContent;
    const marked = sec.querySelector('.marked-count').textContent;
    const head = wrap(name, COL - 8, 12, '600');
    const headH = head.length * LINE + LINE + 8;
    parts.push(`<rect class="tactic" x="${x}" y="${cy}" width="${COL}" height="${headH}" fill="#eef1f4"/>`);
    parts.push(textLines(head, x + 4, cy + 13, { size: 12, weight: '600' }));
    parts.push(
      textLines([`${counts}${marked ? ` · ${marked}` : ''}`], x + 4, cy + 13 + head.length * LINE, {
        size: 9.5,
        fill: '#59636e',
      }),
    );
    cy += headH + 3;
    for (const cell of sec.querySelectorAll('.tech')) {
      if (!visible(cell)) continue;
      const isSub = cell.classList.contains('sub');
      const indent = isSub ? 10 : 0;
      const label = `${cell.querySelector('.tid').textContent} ${cell.querySelector('.tn').textContent}`;
      const lines = wrap(label, COL - indent - 10);
      const h = lines.length * LINE + 5;
      const style = getComputedStyle(cell);
      const fill = cssColor(cell.style.background ? style.backgroundColor : '', '#ffffff');
      const ink = cell.style.color ? style.color : cell.classList.contains('off') ? '#8c959f' : '#1f2328';
      const cls = cell.classList.contains('marked') ? 'cell marked' : 'cell';
      parts.push(
        `<rect class="${cls}" x="${x + indent}" y="${cy}" width="${COL - indent}" height="${h}"` +
          ` fill="${fill}" stroke="#d1d9e0" stroke-width="0.6"><title>${esc(label)}</title></rect>`,
      );
      if (cell.closest('.group').classList.contains('sub-marked') && !isSub) {
        parts.push(`<rect x="${x}" y="${cy}" width="3" height="${h}" fill="#0b62c4"/>`);
      }
      parts.push(textLines(lines, x + indent + 5, cy + 11, { fill: ink }));
      cy += h + 2;
    }
    bottom = Math.max(bottom, cy);
  });
  // The legend under the matrix, one item per line: it cannot cover a label.
  let ly = bottom + 18;
  for (const item of legend) {
    const swatch = item.querySelector('i');
    const style = swatch ? getComputedStyle(swatch) : null;
    const text = item.textContent.trim();
    if (item.classList.contains('gradient') && style) {
      const stops = (style.backgroundImage.match(/rgba?\([^)]*\)/g) || []).map(
        (c, k, all) => `<stop offset="${all.length > 1 ? k / (all.length - 1) : 0}" stop-color="${c}"/>`,
      );
      parts.push(
        `<defs><linearGradient id="g${ly}">${stops.join('')}</linearGradient></defs>` +
          `<rect x="${PAD}" y="${ly - 9}" width="60" height="11" fill="url(#g${ly})" stroke="#8c959f" stroke-width="0.5"/>`,
      );
    } else if (style) {
      const fill = cssColor(style.backgroundColor, '#ffffff');
      parts.push(`<rect x="${PAD}" y="${ly - 9}" width="14" height="11" fill="${fill}" stroke="#8c959f" stroke-width="0.5"/>`);
    }
    parts.push(textLines([text], PAD + (item.classList.contains('gradient') ? 66 : 20), ly, { size: 11 }));
    ly += 17;
  }
  const height = ly + PAD;
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}"` +
    ` font-family='${FONT}'><rect width="100%" height="100%" fill="#ffffff"/>${parts.join('')}</svg>`
  );
}

export function svgToPng(svg, scale = 2) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    const url = URL.createObjectURL(new Blob([svg], { type: 'image/svg+xml' }));
    img.onload = () => {
      const canvas = document.createElement('canvas');
      canvas.width = Math.ceil(img.width * scale);
      canvas.height = Math.ceil(img.height * scale);
      const ctx = canvas.getContext('2d');
      ctx.scale(scale, scale);
      ctx.drawImage(img, 0, 0);
      URL.revokeObjectURL(url);
      canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error('canvas gave no PNG'))), 'image/png');
    };
    img.onerror = () => {
      URL.revokeObjectURL(url);
      reject(new Error('the SVG could not be drawn'));
    };
    img.src = url;
  });
}
