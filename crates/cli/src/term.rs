//! Local terminal handling: raw mode with guaranteed restore, window size,
//! and a signal thread (SIGWINCH for resizes, termination signals for the proxy).

use std::io;
use std::sync::Mutex;

static SAVED: Mutex<Option<libc::termios>> = Mutex::new(None);

pub fn is_tty(fd: i32) -> bool {
    // SAFETY: isatty only inspects the descriptor number.
    unsafe { libc::isatty(fd) == 1 }
}

/// Terminal size `(rows, cols)` of `fd`, if it is a terminal.
pub fn size(fd: i32) -> Option<(u16, u16)> {
    // SAFETY: winsize is plain old data; TIOCGWINSZ writes into it and nothing else.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) == 0 && ws.ws_row > 0 {
            Some((ws.ws_row, ws.ws_col))
        } else {
            None
        }
    }
}

/// Restores the terminal saved by [`RawGuard::enter`]; safe to call many times.
pub fn restore() {
    let saved = match SAVED.lock() {
        Ok(mut g) => g.take(),
        Err(p) => p.into_inner().take(),
    };
    if let Some(t) = saved {
        // SAFETY: `t` is a termios previously filled by tcgetattr for stdin.
        unsafe {
            libc::tcsetattr(0, libc::TCSADRAIN, &t);
        }
    }
}

/// Puts stdin into raw mode; the terminal is restored on drop, by [`restore`]
/// (called before every `process::exit`) and from the panic hook.
pub struct RawGuard(());

impl RawGuard {
    pub fn enter() -> io::Result<RawGuard> {
        // SAFETY: termios is plain old data filled by tcgetattr; fd 0 is our stdin.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut t) != 0 {
                return Err(io::Error::last_os_error());
            }
            if let Ok(mut g) = SAVED.lock() {
                if g.is_none() {
                    *g = Some(t);
                }
            }
            let mut raw = t;
            libc::cfmakeraw(&mut raw);
            // keep output post-processing off like docker's raw terminal; reads block for 1 byte
            raw.c_cc[libc::VMIN] = 1;
            raw.c_cc[libc::VTIME] = 0;
            if libc::tcsetattr(0, libc::TCSADRAIN, &raw) != 0 {
                let e = io::Error::last_os_error();
                restore();
                return Err(e);
            }
        }
        install_panic_hook();
        Ok(RawGuard(()))
    }
}

impl Drop for RawGuard {
    fn drop(&mut self) {
        restore();
    }
}

fn install_panic_hook() {
    use std::sync::Once;
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            prev(info);
        }));
    });
}

/// Blocks `sigs` in the calling thread (call before spawning threads so they
/// inherit the mask) and spawns a thread that receives them with sigwait.
pub fn spawn_signal_thread(
    sigs: &[i32],
    mut handler: impl FnMut(i32) + Send + 'static,
) -> io::Result<()> {
    // SAFETY: sigset_t is initialised with sigemptyset before use; pthread_sigmask
    // only changes this thread's mask.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in sigs {
            libc::sigaddset(&mut set, *s);
        }
        let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        set
    };
    struct SendSet(libc::sigset_t);
    // SAFETY: sigset_t is a plain bitmask with no thread affinity.
    unsafe impl Send for SendSet {}
    let s = SendSet(set);
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let s = s;
            loop {
                let mut sig: libc::c_int = 0;
                // SAFETY: the set was built above; sig is a valid out pointer.
                let rc = unsafe { libc::sigwait(&s.0, &mut sig) };
                if rc == 0 {
                    handler(sig);
                }
            }
        })?;
    Ok(())
}

/// Signal names for `kill?signal=`.
pub fn signal_name(sig: i32) -> String {
    let n = match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGALRM => "SIGALRM",
        libc::SIGCONT => "SIGCONT",
        libc::SIGTSTP => "SIGTSTP",
        libc::SIGWINCH => "SIGWINCH",
        _ => return sig.to_string(),
    };
    n.to_string()
}

/// Signals forwarded to the container by the signal proxy (docker forwards all but CHLD/PIPE/URG/WINCH).
pub const PROXY_SIGNALS: &[i32] = &[
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGTERM,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGALRM,
    libc::SIGCONT,
];

/// Parses docker's `--detach-keys` syntax (`ctrl-p,ctrl-q`, `a`, `ctrl-@`) into bytes.
pub fn parse_detach_keys(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for part in s.split(',') {
        let p = part.trim();
        if p.len() == 1 {
            out.push(p.as_bytes()[0]);
            continue;
        }
        let c = p
            .strip_prefix("ctrl-")
            .ok_or_else(|| format!("Unknown character: '{p}'"))?;
        let code = match c {
            "@" => 0,
            "[" => 27,
            "\\" => 28,
            "]" => 29,
            "^" => 30,
            "_" => 31,
            x if x.len() == 1 && x.as_bytes()[0].is_ascii_lowercase() => x.as_bytes()[0] - b'a' + 1,
            _ => return Err(format!("Unknown character: '{p}'")),
        };
        out.push(code);
    }
    if out.is_empty() {
        return Err("empty detach key sequence".into());
    }
    Ok(out)
}
