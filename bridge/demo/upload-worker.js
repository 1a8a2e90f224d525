// Demo DPI: base64-encodes a file for dmp.documents.submit off the page's main thread, chunk by chunk,
// reporting progress, so that a 20 MB document never freezes the screen.
// Message in: {file: File}. Messages out: {progress: 0..1} several times, then {base64} or {error}.

const CHUNK = 3 * 256 * 1024; // a multiple of 3: each chunk's base64 joins the next without padding
const SLICE = 0x8000; // String.fromCharCode's argument count stays well below engine limits

function toBase64(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i += SLICE) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + SLICE));
  }
  return btoa(binary);
}

self.onmessage = async ({ data: { file } }) => {
  try {
    const parts = [];
    for (let offset = 0; offset < file.size; offset += CHUNK) {
      const bytes = new Uint8Array(await file.slice(offset, offset + CHUNK).arrayBuffer());
      parts.push(toBase64(bytes));
      self.postMessage({ progress: Math.min(1, (offset + bytes.length) / file.size) });
    }
    self.postMessage({ base64: parts.join("") });
  } catch (err) {
    self.postMessage({ error: String((err && err.name) || "lecture") });
  }
};
