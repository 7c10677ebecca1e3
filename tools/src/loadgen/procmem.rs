//! Which processes to measure and how much memory they hold: summed resident set size (VmRSS
//! from `/proc/<pid>/status`, falling back to `Rss` in `smaps_rollup`) of every selected
//! process. Processes are selected by pid, by pid tree (a runner and all its descendants), by
//! pid files matching a glob, or by `/proc/<pid>/comm` name.

use std::collections::{BTreeSet, HashMap};
use std::fs;

use serde_json::{json, Value};

/// The selection, from the command line.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ProcSelect {
    /// Processes to measure, comma-separated pids.
    #[arg(long, value_delimiter = ',')]
    pub pids: Vec<u32>,
    /// Measure these pids and all their descendants (e.g. the `holdfast` or `pushpin` runner).
    #[arg(long, value_delimiter = ',')]
    pub pid_tree: Vec<u32>,
    /// Measure the pids written in files matching this glob (`*` and `?` in the file name only).
    #[arg(long)]
    pub pid_file_glob: Option<String>,
    /// Measure every process whose `/proc/<pid>/comm` equals one of these names or starts
    /// with `<name>-` (this tool's own processes excluded). Beware other instances on the host.
    #[arg(long, value_delimiter = ',')]
    pub proc_name: Vec<String>,
}

impl ProcSelect {
    pub fn is_empty(&self) -> bool {
        self.pids.is_empty()
            && self.pid_tree.is_empty()
            && self.pid_file_glob.is_none()
            && self.proc_name.is_empty()
    }

    /// The selected live processes, as (pid, comm).
    pub fn resolve(&self) -> Vec<(u32, String)> {
        let mut set: BTreeSet<u32> = self.pids.iter().copied().collect();
        let all = list_processes();
        if !self.pid_tree.is_empty() {
            let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
            for p in &all {
                children.entry(p.ppid).or_default().push(p.pid);
            }
            let mut stack = self.pid_tree.clone();
            while let Some(pid) = stack.pop() {
                if set.insert(pid) {
                    stack.extend(children.get(&pid).into_iter().flatten().copied());
                }
            }
        }
        if let Some(glob) = &self.pid_file_glob {
            set.extend(pids_from_files(glob));
        }
        let me = std::process::id();
        for p in &all {
            if p.pid != me
                && !p.comm.starts_with("holdfast-loadg")
                && self.proc_name.iter().any(|n| comm_matches(&p.comm, n))
            {
                set.insert(p.pid);
            }
        }
        set.into_iter()
            .filter_map(|pid| {
                fs::read_to_string(format!("/proc/{pid}/comm"))
                    .ok()
                    .map(|c| (pid, c.trim().to_string()))
            })
            .collect()
    }

    /// Summed RSS in KiB of the selected processes, with the per-process detail.
    pub fn measure(&self) -> (u64, Value) {
        let mut total = 0;
        let mut detail = Vec::new();
        for (pid, comm) in self.resolve() {
            if let Some(kib) = rss_kib(pid) {
                total += kib;
                detail.push(json!({"pid": pid, "comm": comm, "rss_kib": kib}));
            }
        }
        (total, Value::Array(detail))
    }
}

/// `comm` is truncated to 15 bytes by the kernel, hence the prefix match on `<name>-`.
fn comm_matches(comm: &str, name: &str) -> bool {
    comm == name
        || comm
            .strip_prefix(name)
            .is_some_and(|rest| rest.starts_with('-'))
}

struct ProcInfo {
    pid: u32,
    ppid: u32,
    comm: String,
}

fn list_processes() -> Vec<ProcInfo> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let (ppid, comm) = parse_stat(&stat)?;
        Some(ProcInfo { pid, ppid, comm })
    })
    .collect()
}

/// The parent pid and comm from `/proc/<pid>/stat` (`pid (comm) state ppid ...`; comm may
/// contain spaces and parentheses, so it ends at the last `)`).
fn parse_stat(stat: &str) -> Option<(u32, String)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_string();
    let mut rest = stat.get(close + 1..)?.split_whitespace();
    let _state = rest.next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some((ppid, comm))
}

/// Resident set size of one process in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let from = |file: &str, key: &str| -> Option<u64> {
        let text = fs::read_to_string(format!("/proc/{pid}/{file}")).ok()?;
        text.lines().find_map(|l| {
            l.strip_prefix(key)?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
    };
    from("status", "VmRSS:").or_else(|| from("smaps_rollup", "Rss:"))
}

fn pids_from_files(glob: &str) -> Vec<u32> {
    let (dir, pattern) = match glob.rsplit_once('/') {
        Some(("", p)) => ("/", p),
        Some((d, p)) => (d, p),
        None => (".", glob),
    };
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| {
            let e = e.ok()?;
            let name = e.file_name().into_string().ok()?;
            if !wildcard(pattern.as_bytes(), name.as_bytes()) {
                return None;
            }
            fs::read_to_string(e.path()).ok()?.trim().parse().ok()
        })
        .collect()
}

/// Shell-style match with `*` and `?`.
fn wildcard(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => wildcard(&p[1..], s) || (!s.is_empty() && wildcard(p, &s[1..])),
        (Some(b'?'), Some(_)) => wildcard(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => wildcard(&p[1..], &s[1..]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines() {
        assert_eq!(
            parse_stat("12 (a b) c) S 7 12 12 0"),
            Some((7, "a b) c".to_string()))
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn names_and_globs() {
        assert!(comm_matches("pushpin-handler", "pushpin"));
        assert!(comm_matches("zurl", "zurl"));
        assert!(!comm_matches("zurlx", "zurl"));
        assert!(wildcard(b"*.pid", b"condure.pid"));
        assert!(wildcard(b"p?-*", b"p1-x"));
        assert!(!wildcard(b"*.pid", b"condure.log"));
    }

    #[test]
    fn own_rss_is_readable() {
        assert!(rss_kib(std::process::id()).is_some_and(|k| k > 0));
    }
}
