//! `pushpin.conf` (`holdfast_proto::config`): the INI reader and the whole typed load with
//! `include`, placeholders and `port_offset`, from memory.
//!
//! The input is the main file, a NUL byte, then the included file; the first byte picks the
//! command-line overrides. Checked: the INI parse is deterministic and every entry is found by
//! its section and key; loading is deterministic; an accepted config names its own path.
#![no_main]

use std::io;
use std::path::{Path, PathBuf};

use holdfast_fuzz::take_byte;
use holdfast_proto::config::ini::Ini;
use holdfast_proto::config::{Config, Overrides};
use libfuzzer_sys::fuzz_target;

fn load(main: &str, include: &str, overrides: &Overrides) -> String {
    let main_path = PathBuf::from("/fuzz/etc/pushpin.conf");
    let result = Config::load_with(&main_path, overrides, |p: &Path| {
        if p == main_path {
            Ok(main.to_string())
        } else if p.file_name().is_some_and(|n| n == "internal.conf") || p.starts_with("/fuzz") {
            Ok(include.to_string())
        } else {
            Err(io::Error::new(io::ErrorKind::NotFound, "no such file"))
        }
    });
    if let Ok((config, _)) = &result {
        assert_eq!(config.path.as_deref(), Some(main_path.as_path()));
    }
    format!("{result:?}")
}

fuzz_target!(|data: &[u8]| {
    let (ctl, rest) = take_byte(data);
    let text = String::from_utf8_lossy(rest);
    let (main, include) = text.split_once('\0').unwrap_or((&text, ""));

    let (ini, malformed) = Ini::parse(main);
    assert_eq!((ini.clone(), malformed), Ini::parse(main));
    for e in ini.entries() {
        let found = ini.get(&e.section, &e.key).expect("entry is found");
        assert_eq!((&found.section, &found.key), (&e.section, &e.key));
    }

    let overrides = Overrides {
        id: (ctl & 1 != 0).then_some(u32::from(ctl >> 4)),
        ipc_prefix: (ctl & 2 != 0).then(|| "x-".to_string()),
        port_offset: (ctl & 4 != 0).then_some(u16::from(ctl) * 100),
        port: (ctl & 8 != 0).then(|| "127.0.0.1:7999".to_string()),
    };
    assert_eq!(
        load(main, include, &overrides),
        load(main, include, &overrides)
    );
});
