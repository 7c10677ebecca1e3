//! Unix-domain socket listeners (`--local-listen`, Pushpin's `local_ports`).
//!
//! The socket is bound once by the process and every worker polls a duplicate of it (Unix
//! sockets have no `SO_REUSEPORT` balancing): whichever worker accepts first owns the
//! connection. A socket file left by an earlier run is replaced; a path that exists and is not
//! a socket is refused. Like Pushpin, the file is left in place at exit. Clients of such a
//! socket have no address: the handler gets an empty peer address and port 0.

use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::Path;

use crate::config::LocalListen;
use crate::RunError;

/// Binds `spec`'s socket, non-blocking, with its mode and owner applied.
pub fn bind(spec: &LocalListen) -> Result<UnixListener, RunError> {
    let path = spec.path.as_path();
    let fail = |what: &'static str| {
        move |source| RunError::Local {
            path: path.to_path_buf(),
            what,
            source,
        }
    };
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            fs::remove_file(path).map_err(fail("remove the old socket file"))?
        }
        Ok(_) => {
            return Err(fail("refusing to replace it")(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "the path exists and is not a socket",
            )))
        }
        Err(_) => {}
    }
    let listener = UnixListener::bind(path).map_err(fail("bind"))?;
    listener
        .set_nonblocking(true)
        .map_err(fail("set non-blocking"))?;
    if let Some(mode) = spec.mode {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(fail("set mode"))?;
    }
    if spec.user.is_some() || spec.group.is_some() {
        let uid = spec
            .user
            .as_deref()
            .map(|u| lookup_id(Path::new("/etc/passwd"), u))
            .transpose()
            .map_err(fail("look up the user"))?;
        let gid = spec
            .group
            .as_deref()
            .map(|g| lookup_id(Path::new("/etc/group"), g))
            .transpose()
            .map_err(fail("look up the group"))?;
        std::os::unix::fs::chown(path, uid, gid).map_err(fail("change the owner"))?;
    }
    Ok(listener)
}

/// A numeric id, or the id of `name` in a passwd/group-format file (`name:x:id:...`).
fn lookup_id(file: &Path, name: &str) -> std::io::Result<u32> {
    if let Ok(id) = name.parse::<u32>() {
        return Ok(id);
    }
    let text = fs::read_to_string(file)?;
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let entry = fields.next()?;
            let id = fields.nth(1)?.parse::<u32>().ok()?;
            (entry == name).then_some(id)
        })
        .next()
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("no '{name}' in {}", file.display()),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_by_number_or_name() {
        assert_eq!(lookup_id(Path::new("/etc/passwd"), "0").unwrap(), 0);
        assert_eq!(lookup_id(Path::new("/etc/passwd"), "root").unwrap(), 0);
        assert_eq!(lookup_id(Path::new("/etc/group"), "root").unwrap(), 0);
        assert!(lookup_id(Path::new("/etc/passwd"), "no-such-user-x").is_err());
    }

    #[test]
    fn binds_replaces_a_stale_socket_and_refuses_other_files() {
        let dir = std::env::temp_dir().join(format!("hf-local-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let spec = LocalListen {
            path: dir.join("s"),
            mode: Some(0o660),
            user: None,
            group: None,
        };
        let first = bind(&spec).unwrap();
        drop(first);
        let _second = bind(&spec).expect("a stale socket file is replaced");
        let mode = fs::metadata(&spec.path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o660);
        let file = LocalListen {
            path: dir.join("f"),
            ..spec.clone()
        };
        fs::write(&file.path, "x").unwrap();
        assert!(bind(&file).is_err());
        let _ = fs::remove_dir_all(&dir);
    }
}
