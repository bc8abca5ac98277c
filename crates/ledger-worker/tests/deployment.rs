//! The deployment files cannot run here (no Docker), so this checks their
//! wiring: docker-compose.yml's worker against Config.json, the other
//! services and the worker's own configuration, and the Dockerfile's shape.
//!
//! YAML is parsed with `serde_norway`, a maintained fork of `serde_yaml`
//! (which is archived), as a dev-dependency only: one small C-free crate
//! pair, no proc-macro stack beyond the serde we already build.

use std::collections::BTreeMap;
use std::path::PathBuf;

use ledger_worker::config::{Overrides, WorkerConfig, env_vars};
use serde_norway::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn compose() -> Value {
    serde_norway::from_str(&read("docker-compose.yml")).expect("docker-compose.yml parses")
}

fn service<'a>(c: &'a Value, name: &str) -> &'a Value {
    c.get("services")
        .and_then(|s| s.get(name))
        .unwrap_or_else(|| panic!("service {name} missing"))
}

fn worker_env(c: &Value) -> BTreeMap<String, String> {
    let env = service(c, "worker")
        .get("environment")
        .expect("worker environment");
    let map = env.as_mapping().expect("environment is a mapping");
    map.iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s.clone(),
                Value::Bool(b) => b.to_string(),
                Value::Number(n) => n.to_string(),
                other => panic!("{k:?}: unexpected {other:?}"),
            };
            (k.as_str().expect("string key").to_string(), v)
        })
        .collect()
}

/// `${VAR:-default}` as compose would expand it with VAR unset.
fn expand(v: &str) -> String {
    match (v.find("${"), v.find(":-"), v.rfind('}')) {
        (Some(a), Some(b), Some(c)) if a < b && b < c => {
            format!("{}{}{}", &v[..a], &v[b + 2..c], &v[c + 1..])
        }
        _ => v.to_string(),
    }
}

fn ports(svc: &Value) -> Vec<String> {
    svc.get("ports")
        .and_then(Value::as_sequence)
        .map(|s| {
            s.iter()
                .filter_map(|p| p.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn exposes(svc: &Value, port: u16) -> bool {
    ports(svc)
        .iter()
        .any(|p| p.rsplit(':').next().and_then(|c| c.parse::<u16>().ok()) == Some(port))
}

fn host_port(url: &str) -> (String, Option<u16>) {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    match hostport.rsplit_once(':') {
        Some((h, p)) => (h.to_string(), p.parse().ok()),
        None => (hostport.to_string(), None),
    }
}

#[test]
fn worker_env_is_known_and_loads() {
    let c = compose();
    let env = worker_env(&c);
    let known: Vec<String> = env_vars().into_iter().map(|v| v.name).collect();
    // Read by the CLI itself, not by the worker config.
    let cli = ["AOAI_LEDGER_LOG_FORMAT"];
    for name in env.keys().filter(|n| n.starts_with("AOAI_LEDGER_")) {
        assert!(
            known.contains(name) || cli.contains(&name.as_str()),
            "{name} is not a known setting"
        );
    }
    let lookup = |n: &str| env.get(n).map(|v| expand(v));
    let config = WorkerConfig::load(None, lookup, &Overrides::default()).expect("loads");
    config.validate().expect("validates");
    assert_eq!(
        config.eventhubs.auth.resolve(lookup),
        ledger_worker::config::EventHubsAuth::ConnectionString
    );
    assert_eq!(config.http.listen_addr(), Some("0.0.0.0:9090"));
    assert!(exposes(service(&c, "worker"), 9090));
    assert!(service(&c, "worker").get("restart").is_some());
    assert_eq!(
        env.get("AOAI_LEDGER_LOG_FORMAT").map(String::as_str),
        Some("json")
    );
}

#[test]
fn worker_wired_to_emulator_azurite_sqlserver() {
    let c = compose();
    let env = worker_env(&c);
    let lookup = |n: &str| env.get(n).map(|v| expand(v));
    let config = WorkerConfig::load(None, lookup, &Overrides::default()).unwrap();

    let endpoint = config
        .eventhubs
        .endpoint
        .as_deref()
        .expect("custom endpoint");
    let (host, port) = host_port(endpoint);
    assert_eq!(port, Some(5672), "{endpoint}");
    assert!(
        exposes(service(&c, &host), 5672),
        "{host} does not expose 5672"
    );

    // The emulator's entities.
    let emu: serde_json::Value =
        serde_json::from_str(&read("docker/eventhubs-emulator/Config.json")).expect("Config.json");
    let ns = &emu["UserConfig"]["NamespaceConfig"][0];
    assert_eq!(ns["Type"], "EventHub");
    let entity = ns["Entities"]
        .as_array()
        .and_then(|e| {
            e.iter()
                .find(|e| Some(e["Name"].as_str().unwrap_or("")) == config.eventhubs.hub.as_deref())
        })
        .expect("the worker's hub is in Config.json");
    let partitions: u32 = entity["PartitionCount"]
        .as_str()
        .and_then(|p| p.parse().ok())
        .expect("PartitionCount");
    assert!(partitions >= 2, "tf halves use partitions 0 and 1");
    assert!(
        entity["ConsumerGroups"].as_array().is_some_and(|g| g
            .iter()
            .any(|g| g["Name"].as_str() == Some(config.eventhubs.consumer_group.as_str()))),
        "consumer group {} not in Config.json",
        config.eventhubs.consumer_group
    );
    // The Rust SDK's AMQP host name is the connection string's (localhost).
    let cs = lookup(ledger_worker::config::CONNECTION_STRING_ENV).expect("connection string");
    assert!(cs.contains("UseDevelopmentEmulator=true"));
    assert!(cs.contains(&format!(
        "EntityPath={}",
        entity["Name"].as_str().unwrap_or("")
    )));
    assert!(cs.contains(&format!(
        "sb://{}",
        config.eventhubs.namespace.as_deref().unwrap_or("")
    )));

    // The lake on Azurite.
    assert!(
        config
            .lake
            .url
            .as_deref()
            .is_some_and(|u| u.starts_with("az://"))
    );
    assert_eq!(
        env.get("AZURE_STORAGE_USE_EMULATOR").map(String::as_str),
        Some("true")
    );
    let blob = env
        .get("AZURITE_BLOB_STORAGE_URL")
        .expect("AZURITE_BLOB_STORAGE_URL");
    let (bhost, bport) = host_port(blob);
    assert!(
        exposes(service(&c, &bhost), bport.unwrap_or(10000)),
        "{blob}"
    );

    // The database on SQL Server, the password from the sqlserver service.
    let db = config.database.url.as_deref().expect("database url");
    let (dhost, dport) = host_port(db);
    assert!(exposes(service(&c, &dhost), dport.unwrap_or(1433)), "{db}");
    let sa = service(&c, &dhost)
        .get("environment")
        .and_then(|e| e.get("MSSQL_SA_PASSWORD"))
        .and_then(Value::as_str)
        .expect("MSSQL_SA_PASSWORD");
    assert_eq!(
        env.get("AOAI_LEDGER_DB_PASSWORD").map(String::as_str),
        Some(sa)
    );

    let deps: Vec<&str> = service(&c, "worker")
        .get("depends_on")
        .and_then(Value::as_sequence)
        .expect("depends_on list")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for s in [host.as_str(), bhost.as_str(), dhost.as_str()] {
        assert!(deps.contains(&s), "depends_on lacks {s}");
    }
    assert!(
        service(&c, &host)
            .get("volumes")
            .is_some_and(|v| format!("{v:?}").contains("Config.json"))
    );
}

#[test]
fn dockerfile_multistage_nonroot() {
    let d = read("Dockerfile");
    let froms = d
        .lines()
        .filter(|l| l.trim_start().starts_with("FROM "))
        .count();
    assert!(froms >= 2, "multi-stage");
    assert!(d.contains("COPY --from=builder"));
    assert!(d.contains("cargo build --release -p aoai-ledger --locked"));
    let user = d
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("USER "))
        .expect("a USER");
    let uid = user.split(':').next().unwrap_or("");
    assert!(uid != "0" && uid != "root", "non-root user, got {user}");
    assert!(d.contains("EXPOSE 9090"));
    assert!(d.contains(r#"ENTRYPOINT ["aoai-ledger"]"#));
    let ignore = read(".dockerignore");
    assert!(ignore.lines().any(|l| l.trim() == "target/"));
    assert!(ignore.lines().any(|l| l.trim() == ".git/"));
}
