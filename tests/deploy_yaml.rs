//! The Kubernetes example (deploy/kubernetes/) agrees with itself and with the gateway: every
//! document parses, the ConfigMap's gateway.toml is a valid config, and the storegate
//! container's probes, mounts and grace period match what that config says.

use std::path::{Path, PathBuf};

use serde_yaml_ng::Value;

fn documents() -> Vec<Value> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "{files:?}");
    let mut docs = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            let v = <Value as serde::Deserialize>::deserialize(doc)
                .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            docs.push(v);
        }
    }
    docs
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"].as_str() == Some(kind))
        .unwrap_or_else(|| panic!("no {kind}"))
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v:?}"))
}

#[test]
fn the_kubernetes_example_matches_the_gateway_config() {
    let docs = documents();
    let config_text = str_of(&of_kind(&docs, "ConfigMap")["data"]["gateway.toml"]).to_owned();
    let secret = of_kind(&docs, "Secret");
    let pod = &of_kind(&docs, "Deployment")["spec"]["template"]["spec"];
    let containers = pod["containers"].as_sequence().unwrap();
    let gw = containers
        .iter()
        .find(|c| c["name"].as_str() == Some("storegate"))
        .expect("a storegate container");

    // The config, with every file it names put where the mounts would put it.
    let raw: toml::Table = config_text
        .parse()
        .expect("the ConfigMap's gateway.toml is TOML");
    let admin_listen: std::net::SocketAddr =
        raw["admin"]["listen"].as_str().unwrap().parse().unwrap();
    let server = raw["server"].as_table().unwrap();
    let drain_ms = server["drain_delay_ms"].as_integer().unwrap();
    let grace_ms = server["shutdown_grace_ms"].as_integer().unwrap();
    let state_dir = server["state_dir"].as_str().unwrap();

    // Probes on the admin port, at the admin listener's paths.
    for (probe, path) in [("readinessProbe", "/readyz"), ("livenessProbe", "/livez")] {
        let get = &gw[probe]["httpGet"];
        assert_eq!(str_of(&get["path"]), path, "{probe}");
        assert_eq!(
            get["port"].as_u64(),
            Some(u64::from(admin_listen.port())),
            "{probe}"
        );
    }
    assert!(
        admin_listen.ip().is_unspecified(),
        "the kubelet probes the pod address, so admin.listen binds it"
    );

    // The config the container is pointed at lives in the ConfigMap's mount.
    let args: Vec<&str> = gw["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(str_of)
        .collect();
    let config_path = args[args.iter().position(|a| *a == "--config").unwrap() + 1];
    let mounts = gw["volumeMounts"].as_sequence().unwrap();
    let volumes = pod["volumes"].as_sequence().unwrap();
    let mount_of = |path: &str| {
        mounts
            .iter()
            .filter(|m| {
                path.starts_with(&format!("{}/", str_of(&m["mountPath"])))
                    || str_of(&m["mountPath"]) == path
            })
            .max_by_key(|m| str_of(&m["mountPath"]).len())
            .unwrap_or_else(|| panic!("{path} is in no mount"))
    };
    let volume_of = |m: &Value| {
        volumes
            .iter()
            .find(|v| v["name"] == m["name"])
            .unwrap_or_else(|| panic!("no volume {:?}", m["name"]))
    };
    let config_mount = mount_of(config_path);
    assert!(volume_of(config_mount)["configMap"].is_mapping());
    assert_eq!(
        Path::new(config_path).file_name().unwrap(),
        "gateway.toml",
        "the ConfigMap key is the file name"
    );

    // TLS, signing and Redis files come from the Secret's mount, each a key of the Secret.
    let secret_keys = secret["stringData"].as_mapping().unwrap();
    for file in [
        raw["tls"]["cert"].as_str().unwrap(),
        raw["tls"]["key"].as_str().unwrap(),
        raw["signing"]["key"].as_str().unwrap(),
        raw["cluster"]["password_file"].as_str().unwrap(),
        raw["cluster"]["ca_file"].as_str().unwrap(),
    ] {
        let m = mount_of(file);
        assert!(volume_of(m)["secret"].is_mapping(), "{file}");
        let key = Path::new(file).file_name().unwrap().to_str().unwrap();
        assert!(secret_keys.contains_key(key), "the Secret has {key}");
    }

    // state_dir is a writable volume, the root filesystem read-only, the user not root.
    let state = mount_of(state_dir);
    assert_eq!(str_of(&state["mountPath"]), state_dir);
    assert_ne!(state["readOnly"].as_bool(), Some(true));
    let security = &gw["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"].as_bool(), Some(true));
    assert_eq!(security["allowPrivilegeEscalation"].as_bool(), Some(false));
    assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
    let ports: Vec<u64> = (gw["ports"].as_sequence().unwrap().iter())
        .map(|p| p["containerPort"].as_u64().unwrap())
        .collect();
    let listen: std::net::SocketAddr = server["listen"].as_str().unwrap().parse().unwrap();
    assert!(
        ports.contains(&u64::from(listen.port()))
            && ports.contains(&u64::from(admin_listen.port()))
    );

    // Kubernetes waits longer than the drain and the grace together before it kills.
    let termination = pod["terminationGracePeriodSeconds"].as_i64().unwrap();
    assert!(termination * 1000 > drain_ms + grace_ms, "{termination} s");

    // And the gateway itself accepts the config once its files exist (placeholders here).
    let dir = tempfile::tempdir().unwrap();
    let pki = storegate::tls::DevPki::generate(&["localhost"]).unwrap();
    let signing = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let relocated = config_text
        .replace("/etc/storegate/secrets", dir.path().to_str().unwrap())
        .replace(state_dir, dir.path().join("state").to_str().unwrap());
    std::fs::write(dir.path().join("tls.crt"), &pki.cert_pem).unwrap();
    std::fs::write(dir.path().join("tls.key"), &pki.key_pem).unwrap();
    std::fs::write(dir.path().join("signing.pem"), signing.serialize_pem()).unwrap();
    std::fs::write(dir.path().join("redis-password"), "placeholder").unwrap();
    std::fs::write(dir.path().join("redis-ca.crt"), &pki.ca_pem).unwrap();
    let cfg = storegate::config::Config::from_toml_str(&relocated, dir.path())
        .unwrap_or_else(|e| panic!("the ConfigMap's gateway.toml: {e}"));
    assert_eq!(cfg.admin.unwrap().listen, admin_listen);
    let cluster = cfg.cluster.expect("the replicas share a cluster store");
    assert!(cluster.redis_url.starts_with("rediss://") && cluster.ca_pem.is_some());
}
