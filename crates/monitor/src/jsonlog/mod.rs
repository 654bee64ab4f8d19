//! json-file logs: the format (shared with berthd's reader) and the monitor's writer.
pub mod format;
pub mod writer;

pub use format::{
    encode_entry, frame_header, log_files, parse_line, rotated_name, LogEntry, StreamKind, MAX_LINE,
};
pub use writer::LogWriter;
