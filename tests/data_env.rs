//! The data folder setting. Alone in its own binary because it changes the
//! process environment, which other tests read concurrently.

use std::path::PathBuf;

use ebmkit::data::{data_dir, Mnist};

#[test]
fn data_dir_follows_the_environment() {
    let old = std::env::var_os("EBMKIT_DATA");
    std::env::remove_var("EBMKIT_DATA");
    let default = data_dir();
    assert_eq!(
        default,
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data")
    );
    // An empty value means unset, not the current directory.
    std::env::set_var("EBMKIT_DATA", "");
    assert_eq!(data_dir(), default);

    let d = std::env::temp_dir().join(format!("ebmkit-data-env-{}", std::process::id()));
    std::env::set_var("EBMKIT_DATA", &d);
    assert_eq!(data_dir(), d);
    let e = Mnist::load_default().unwrap_err().to_string();
    assert!(
        e.contains(d.to_str().unwrap()) && e.contains("EBMKIT_DATA"),
        "{e}"
    );

    match old {
        Some(v) => std::env::set_var("EBMKIT_DATA", v),
        None => std::env::remove_var("EBMKIT_DATA"),
    }
}
