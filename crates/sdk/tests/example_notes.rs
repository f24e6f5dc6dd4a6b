//! The README's example plugin (`examples/notes.rs`) works as documented.

#[allow(dead_code)]
#[path = "../examples/notes.rs"]
mod notes;

use lockbox_sdk::harness::Harness;
use lockbox_sdk::{Error, Operation};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn notes_example_round_trip() -> Result<(), Error> {
    let h = Harness::new(notes::backend()).await?;
    let write_op = h.write_operation("n/todo", &json!({})).await?;
    assert_eq!(write_op, Operation::Create);
    h.write("n/todo", json!({"text": "buy milk", "ttl": "1h"}))
        .await?;
    let r = h.read("n/todo").await?.expect("the note");
    assert_eq!(r.data.as_ref().unwrap()["text"], "buy milk");
    assert_eq!(r.lease_duration, Duration::from_secs(3600));
    assert_eq!(h.list("n/").await?, vec!["todo"]);
    let e = h.write("n/other", json!({"ttl": "1h"})).await.unwrap_err();
    assert_eq!(e.to_string(), "missing required field text");
    h.delete("n/todo").await?;
    assert_eq!(h.read("n/todo").await?, None);
    Ok(())
}
