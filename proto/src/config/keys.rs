//! Every `pushpin.conf` key Holdfast accepts, and what it does with it.
//!
//! The list covers every key of reference §7.2 (HEAD and 1.36), every key of Pushpin's
//! `internal.conf` (1.36 `/usr/lib/pushpin/internal.conf` and HEAD `src/internal.conf`), every
//! other key Pushpin's runner, proxy and handler read, and Holdfast's own extensions. A key not
//! listed here is reported as [`super::ConfigWarning::UnknownKey`]: a misspelt key must never be
//! silently accepted.

/// What Holdfast does with a known key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyUse {
    /// Read into [`super::Config`].
    Used,
    /// Only meaningful to Pushpin's own processes (internal ZeroMQ specs between proxy, handler,
    /// connmgr, Zurl and Mongrel2; binary paths; the update checker). Accepted and ignored:
    /// Holdfast's processes talk over their own sockets.
    PushpinOnly,
    /// A Holdfast extension that Pushpin does not have.
    Extension,
}

const GLOBAL: &[(&str, KeyUse)] = &[
    ("include", KeyUse::Used),
    ("libdir", KeyUse::Used),
    ("rundir", KeyUse::Used),
    ("ipc_prefix", KeyUse::Used),
    ("port_offset", KeyUse::Used),
    ("stats_connection_ttl", KeyUse::Used),
    ("stats_connection_send", KeyUse::Used),
];

const RUNNER: &[(&str, KeyUse)] = &[
    ("services", KeyUse::Used),
    ("http_port", KeyUse::Used),
    ("https_ports", KeyUse::Used),
    ("local_ports", KeyUse::Used),
    ("logdir", KeyUse::Used),
    ("log_level", KeyUse::Used),
    ("client_buffer_size", KeyUse::Used),
    ("client_maxconn", KeyUse::Used),
    ("allow_compression", KeyUse::Used),
    // Deprecated location of [global] rundir; still honoured.
    ("rundir", KeyUse::Used),
    ("condure_bin", KeyUse::PushpinOnly),
    ("mongrel2_bin", KeyUse::PushpinOnly),
    ("m2sh_bin", KeyUse::PushpinOnly),
    ("zurl_bin", KeyUse::PushpinOnly),
    ("connmgr_workers", KeyUse::Extension),
    ("client_header_timeout", KeyUse::Extension),
];

const PROXY: &[(&str, KeyUse)] = &[
    ("routesfile", KeyUse::Used),
    ("debug", KeyUse::Used),
    ("auto_cross_origin", KeyUse::Used),
    ("accept_x_forwarded_protocol", KeyUse::Used),
    ("set_x_forwarded_protocol", KeyUse::Used),
    ("x_forwarded_for", KeyUse::Used),
    ("x_forwarded_for_trusted", KeyUse::Used),
    ("orig_headers_need_mark", KeyUse::Used),
    ("accept_pushpin_route", KeyUse::Used),
    ("cdn_loop", KeyUse::Used),
    ("log_from", KeyUse::Used),
    ("log_user_agent", KeyUse::Used),
    ("sig_iss", KeyUse::Used),
    ("sig_key", KeyUse::Used),
    ("upstream_key", KeyUse::Used),
    ("sockjs_url", KeyUse::Used),
    ("workers", KeyUse::Used),
    ("max_open_requests", KeyUse::Used),
    ("ipc_file_mode", KeyUse::Used),
    ("stats_report_interval", KeyUse::Used),
    ("stats_connections_max_ttl", KeyUse::Used),
    ("prometheus_port", KeyUse::Used),
    ("prometheus_prefix", KeyUse::Used),
    ("updates_check", KeyUse::PushpinOnly),
    ("organization_name", KeyUse::PushpinOnly),
    // internal.conf: connection manager <-> proxy.
    ("connmgr_in_specs", KeyUse::PushpinOnly),
    ("connmgr_in_stream_specs", KeyUse::PushpinOnly),
    ("connmgr_out_specs", KeyUse::PushpinOnly),
    ("condure_in_specs", KeyUse::PushpinOnly),
    ("condure_in_stream_specs", KeyUse::PushpinOnly),
    ("condure_out_specs", KeyUse::PushpinOnly),
    ("m2a_in_specs", KeyUse::PushpinOnly),
    ("m2a_in_stream_specs", KeyUse::PushpinOnly),
    ("m2a_out_specs", KeyUse::PushpinOnly),
    // internal.conf: outbound requests (connmgr client mode or Zurl).
    ("connmgr_client_out_specs", KeyUse::PushpinOnly),
    ("connmgr_client_out_stream_specs", KeyUse::PushpinOnly),
    ("connmgr_client_in_specs", KeyUse::PushpinOnly),
    ("condure_client_out_specs", KeyUse::PushpinOnly),
    ("condure_client_out_stream_specs", KeyUse::PushpinOnly),
    ("condure_client_in_specs", KeyUse::PushpinOnly),
    ("zurl_out_specs", KeyUse::PushpinOnly),
    ("zurl_out_stream_specs", KeyUse::PushpinOnly),
    ("zurl_in_specs", KeyUse::PushpinOnly),
    // internal.conf: proxy <-> handler.
    ("handler_inspect_spec", KeyUse::PushpinOnly),
    ("handler_accept_spec", KeyUse::PushpinOnly),
    ("handler_retry_in_spec", KeyUse::PushpinOnly),
    ("handler_ws_control_in_spec", KeyUse::PushpinOnly),
    ("handler_ws_control_out_spec", KeyUse::PushpinOnly),
    ("handler_ws_control_init_specs", KeyUse::PushpinOnly),
    ("handler_ws_control_stream_specs", KeyUse::PushpinOnly),
    ("stats_spec", KeyUse::PushpinOnly),
    ("command_spec", KeyUse::PushpinOnly),
    ("intreq_in_specs", KeyUse::PushpinOnly),
    ("intreq_in_stream_specs", KeyUse::PushpinOnly),
    ("intreq_out_specs", KeyUse::PushpinOnly),
];

const HANDLER: &[(&str, KeyUse)] = &[
    ("ipc_file_mode", KeyUse::Used),
    ("push_in_spec", KeyUse::Used),
    ("push_in_sub_specs", KeyUse::Used),
    ("push_in_sub_spec", KeyUse::Used),
    ("push_in_sub_connect", KeyUse::Used),
    ("push_in_http_addr", KeyUse::Used),
    ("push_in_http_port", KeyUse::Used),
    ("push_in_http_max_headers_size", KeyUse::Used),
    ("push_in_http_max_body_size", KeyUse::Used),
    // The names 1.36 actually read (its shipped keys above had no effect there).
    ("push_in_max_headers_size", KeyUse::Used),
    ("push_in_max_body_size", KeyUse::Used),
    ("stats_spec", KeyUse::Used),
    ("command_spec", KeyUse::Used),
    ("state_spec", KeyUse::Used),
    ("message_rate", KeyUse::Used),
    ("message_hwm", KeyUse::Used),
    ("message_block_size", KeyUse::Used),
    ("message_wait", KeyUse::Used),
    ("id_cache_ttl", KeyUse::Used),
    ("update_on_first_subscription", KeyUse::Used),
    ("connection_subscription_max", KeyUse::Used),
    ("subscription_linger", KeyUse::Used),
    ("stats_subscription_ttl", KeyUse::Used),
    ("stats_report_interval", KeyUse::Used),
    ("stats_format", KeyUse::Used),
    ("prometheus_port", KeyUse::Used),
    ("prometheus_prefix", KeyUse::Used),
    ("share_all", KeyUse::Used),
    // internal.conf: handler <-> proxy and handler <-> connection manager.
    ("proxy_inspect_spec", KeyUse::PushpinOnly),
    ("proxy_inspect_specs", KeyUse::PushpinOnly),
    ("proxy_accept_spec", KeyUse::PushpinOnly),
    ("proxy_accept_specs", KeyUse::PushpinOnly),
    ("proxy_retry_out_spec", KeyUse::PushpinOnly),
    ("proxy_retry_out_specs", KeyUse::PushpinOnly),
    ("proxy_ws_control_in_spec", KeyUse::PushpinOnly),
    ("proxy_ws_control_out_spec", KeyUse::PushpinOnly),
    ("proxy_ws_control_init_specs", KeyUse::PushpinOnly),
    ("proxy_ws_control_stream_specs", KeyUse::PushpinOnly),
    ("proxy_stats_spec", KeyUse::PushpinOnly),
    ("proxy_stats_specs", KeyUse::PushpinOnly),
    ("proxy_command_spec", KeyUse::PushpinOnly),
    ("proxy_intreq_out_specs", KeyUse::PushpinOnly),
    ("proxy_intreq_out_stream_specs", KeyUse::PushpinOnly),
    ("proxy_intreq_in_specs", KeyUse::PushpinOnly),
    ("condure_in_stream_specs", KeyUse::PushpinOnly),
    ("condure_out_specs", KeyUse::PushpinOnly),
    ("connmgr_in_stream_specs", KeyUse::PushpinOnly),
    ("connmgr_out_specs", KeyUse::PushpinOnly),
    ("m2a_in_stream_specs", KeyUse::PushpinOnly),
    ("m2a_out_specs", KeyUse::PushpinOnly),
];

/// How Holdfast treats `[section] key`, or `None` if it does not know the key at all.
pub fn lookup(section: &str, key: &str) -> Option<KeyUse> {
    let table = match section {
        "global" => GLOBAL,
        "runner" => RUNNER,
        "proxy" => PROXY,
        "handler" => HANDLER,
        _ => return None,
    };
    table.iter().find(|(k, _)| *k == key).map(|(_, u)| *u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        assert_eq!(lookup("proxy", "sig_key"), Some(KeyUse::Used));
        assert_eq!(lookup("proxy", "zurl_in_specs"), Some(KeyUse::PushpinOnly));
        assert_eq!(lookup("runner", "connmgr_workers"), Some(KeyUse::Extension));
        assert_eq!(lookup("handler", "sig_key"), None);
        assert_eq!(lookup("Proxy", "sig_key"), None);
        assert_eq!(lookup("cache", "cache_enable"), None);
    }

    #[test]
    fn no_duplicates() {
        for table in [GLOBAL, RUNNER, PROXY, HANDLER] {
            for (i, (k, _)) in table.iter().enumerate() {
                assert!(
                    !table[i + 1..].iter().any(|(o, _)| o == k),
                    "duplicate key {k}"
                );
            }
        }
    }
}
