// Draws the OISP icon (a lens over a dark tile: "seeing" the traffic) and writes packaging/oisp.ico:
// 16, 32 and 48 px as 32-bit BMP entries (what NSIS and old shells read), 256 px as PNG (Vista+).
// Pure code, no image tools: `bun packaging/make-icon.ts` regenerates the committed file byte for byte.
import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";

type Rgba = [number, number, number, number];
const TILE: Rgba = [22, 38, 66, 255];
const RING: Rgba = [240, 244, 250, 255];
const PUPIL: Rgba = [56, 189, 148, 255];

/** Colour of the point (x, y) in a unit square, or transparent. */
function shade(x: number, y: number): Rgba {
  const r = 0.2; // corner radius of the tile
  const cx = Math.min(Math.max(x, r), 1 - r);
  const cy = Math.min(Math.max(y, r), 1 - r);
  if (Math.hypot(x - cx, y - cy) > r) return [0, 0, 0, 0];
  const d = Math.hypot(x - 0.5, y - 0.5);
  if (d < 0.13) return PUPIL;
  if (d > 0.24 && d < 0.33) return RING;
  return TILE;
}

/** size×size RGBA pixels, top row first, 4×4 supersampled for smooth edges. */
export function render(size: number): Uint8Array {
  const px = new Uint8Array(size * size * 4);
  const n = 4;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const acc = [0, 0, 0, 0];
      for (let sy = 0; sy < n; sy++) {
        for (let sx = 0; sx < n; sx++) {
          const c = shade((x + (sx + 0.5) / n) / size, (y + (sy + 0.5) / n) / size);
          // premultiplied accumulation so transparent samples do not darken edges
          for (let k = 0; k < 3; k++) acc[k]! += c[k]! * c[3];
          acc[3]! += c[3];
        }
      }
      const o = (y * size + x) * 4;
      const a = acc[3]! / (n * n);
      for (let k = 0; k < 3; k++) px[o + k] = acc[3]! ? Math.round(acc[k]! / acc[3]!) : 0;
      px[o + 3] = Math.round(a);
    }
  }
  return px;
}

/** BITMAPINFOHEADER + bottom-up BGRA rows + AND mask, as an ICO entry holds it. */
function bmpEntry(size: number, rgba: Uint8Array): Buffer {
  const maskRow = Math.ceil(size / 32) * 4;
  const header = Buffer.alloc(40);
  header.writeUInt32LE(40, 0);
  header.writeInt32LE(size, 4);
  header.writeInt32LE(size * 2, 8); // colour + mask height
  header.writeUInt16LE(1, 12);
  header.writeUInt16LE(32, 14);
  header.writeUInt32LE(size * size * 4 + maskRow * size, 20);
  const pixels = Buffer.alloc(size * size * 4);
  const mask = Buffer.alloc(maskRow * size);
  for (let y = 0; y < size; y++) {
    const row = size - 1 - y;
    for (let x = 0; x < size; x++) {
      const i = (y * size + x) * 4;
      const o = (row * size + x) * 4;
      pixels[o] = rgba[i + 2]!;
      pixels[o + 1] = rgba[i + 1]!;
      pixels[o + 2] = rgba[i]!;
      pixels[o + 3] = rgba[i + 3]!;
      if (rgba[i + 3] === 0) mask[row * maskRow + (x >> 3)]! |= 0x80 >> (x & 7);
    }
  }
  return Buffer.concat([header, pixels, mask]);
}

function crc32(buf: Buffer): number {
  let c = ~0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return ~c >>> 0;
}

function pngEntry(size: number, rgba: Uint8Array): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, "latin1"), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 6; // RGBA
  const raw = Buffer.alloc(size * (size * 4 + 1));
  for (let y = 0; y < size; y++) Buffer.from(rgba.subarray(y * size * 4, (y + 1) * size * 4)).copy(raw, y * (size * 4 + 1) + 1);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", zlib.deflateSync(raw, { level: 9 })),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

export function makeIco(): Buffer {
  const entries = [16, 32, 48, 256].map((s) => ({ size: s, data: s >= 256 ? pngEntry(s, render(s)) : bmpEntry(s, render(s)) }));
  const dir = Buffer.alloc(6 + 16 * entries.length);
  dir.writeUInt16LE(1, 2); // type: icon
  dir.writeUInt16LE(entries.length, 4);
  let offset = dir.length;
  entries.forEach((e, i) => {
    const o = 6 + i * 16;
    dir[o] = e.size & 0xff; // 256 is written as 0
    dir[o + 1] = e.size & 0xff;
    dir.writeUInt16LE(1, o + 4); // planes
    dir.writeUInt16LE(32, o + 6); // bits per pixel
    dir.writeUInt32LE(e.data.length, o + 8);
    dir.writeUInt32LE(offset, o + 12);
    offset += e.data.length;
  });
  return Buffer.concat([dir, ...entries.map((e) => e.data)]);
}

if (import.meta.main) {
  const out = path.join(import.meta.dir, "oisp.ico");
  fs.writeFileSync(out, makeIco());
  console.log(`wrote ${out} (${fs.statSync(out).size} bytes)`);
}
