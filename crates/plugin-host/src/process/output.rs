//! A plugin's output, read in lines capped at [`super::MAX_LINE`] bytes
//! ([`CappedLines`]), so a plugin cannot grow the host's memory through it.

use super::MAX_LINE;
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// A line of plugin output, at most [`MAX_LINE`] bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputLine {
    /// The line without its newline (invalid UTF-8 replaced).
    pub text: String,
    /// Whether the line was longer and its rest discarded.
    pub truncated: bool,
}

impl OutputLine {
    /// The text, with a marker when it was truncated.
    pub fn for_log(self) -> String {
        if self.truncated {
            format!(
                "{} [line truncated: plugin output lines are capped at {MAX_LINE} bytes]",
                self.text
            )
        } else {
            self.text
        }
    }
}

/// Splits plugin output into lines of at most `cap` bytes without ever
/// holding more than `cap` bytes of a line: a longer line is returned
/// truncated as soon as the cap is reached, and its rest is skipped up to
/// the next newline.
pub struct CappedLines<R> {
    reader: R,
    cap: usize,
    skipping: bool,
}

impl<R: AsyncBufRead + Unpin> CappedLines<R> {
    /// Lines of `reader`, each at most `cap` bytes.
    pub fn new(reader: R, cap: usize) -> Self {
        CappedLines {
            reader,
            cap,
            skipping: false,
        }
    }

    /// The next line; `None` at the end of the stream.
    pub async fn next_line(&mut self) -> std::io::Result<Option<OutputLine>> {
        let mut buf: Vec<u8> = Vec::new();
        loop {
            let available = self.reader.fill_buf().await?;
            if available.is_empty() {
                return Ok((!buf.is_empty()).then(|| line_of(buf, false)));
            }
            let newline = available.iter().position(|&b| b == b'\n');
            if self.skipping {
                let n = newline.map_or(available.len(), |i| i + 1);
                self.skipping = newline.is_none();
                self.reader.consume(n);
                continue;
            }
            let room = self.cap - buf.len();
            match newline {
                Some(i) if i <= room => {
                    buf.extend_from_slice(&available[..i]);
                    self.reader.consume(i + 1);
                    return Ok(Some(line_of(buf, false)));
                }
                Some(i) => {
                    buf.extend_from_slice(&available[..room]);
                    self.reader.consume(i + 1);
                    return Ok(Some(line_of(buf, true)));
                }
                None if available.len() <= room => {
                    let n = available.len();
                    buf.extend_from_slice(available);
                    self.reader.consume(n);
                }
                None => {
                    let n = available.len();
                    buf.extend_from_slice(&available[..room]);
                    self.reader.consume(n);
                    self.skipping = true;
                    return Ok(Some(line_of(buf, true)));
                }
            }
        }
    }
}

fn line_of(mut bytes: Vec<u8>, truncated: bool) -> OutputLine {
    if !truncated && bytes.last() == Some(&b'\r') {
        bytes.pop();
    }
    OutputLine {
        text: String::from_utf8_lossy(&bytes).into_owned(),
        truncated,
    }
}
