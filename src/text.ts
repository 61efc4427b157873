// Text from the outside world (file names and content, arguments, hostnames, kernel strings) made
// safe to show a person: every writer of reports and every line printed to a terminal goes through
// here, so no escape sequence, bell, NUL or line separator of someone else's choosing reaches them.
// Controls become visible escapes ("\x1b", "\u2028"), so a person can still see what was there.

// C0 controls, DEL, C1 controls, line/paragraph separators, bidi embeddings/overrides/isolates.
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
// The same, but leaving newline and tab alone (multi-line text such as a remedy).
const UNSAFE_KEEP_LINES = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

function visible(c: string): string {
  const n = c.charCodeAt(0);
  return n <= 0xff ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u${n.toString(16).padStart(4, '0')}`;
}

/** One line: every control character (newline and tab too) shown as an escape. */
export function scrubLine(s: string): string {
  return s.replace(UNSAFE, visible);
}

/** Several lines: newline and tab kept, every other control character shown as an escape. */
export function scrubText(s: string): string {
  return s.replace(UNSAFE_KEEP_LINES, visible);
}
