//! A complete lockbox plugin: a small secrets engine storing notes with an
//! optional TTL. Build it, register its sha256, enable it, and
//! `write notes/n/todo text="buy milk" ttl=1h`.
use lockbox_sdk::framework::{Field, Fields, Path, PathBackend};
use lockbox_sdk::{Error, Kind, Request, Response, Storage};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Serialize, Deserialize)]
struct Note {
    text: String,
    ttl_seconds: u64,
}

async fn write_note(
    req: Request,
    fields: Fields,
    storage: Storage,
) -> Result<Option<Response>, Error> {
    let note = Note {
        text: fields.require_str("text")?.to_string(),
        ttl_seconds: fields.duration("ttl").unwrap_or_default().as_secs(),
    };
    storage.put_json(&req.path, &note).await?;
    Ok(None)
}

async fn read_note(req: Request, _: Fields, storage: Storage) -> Result<Option<Response>, Error> {
    let Some(note) = storage.get_json::<Note>(&req.path).await? else {
        return Ok(None); // 404
    };
    let data = serde_json::json!({ "text": note.text });
    Ok(Some(
        Response::json(data).with_lease(Duration::from_secs(note.ttl_seconds), false),
    ))
}

pub fn backend() -> PathBackend {
    PathBackend::new(Kind::Secret, "v0.1.0")
        .help("Stores short notes.")
        .path(Path::new("n/").list(|_, _, s| async move {
            let keys = s.list("n/").await?;
            Ok((!keys.is_empty()).then(|| Response::list(keys)))
        }))
        .path(
            Path::new("n/{name}")
                .help("One note.", "Write text (and a ttl); read it back.")
                .field(Field::string("text").required().description("The note."))
                .field(Field::duration("ttl").description("Lease hint for readers."))
                .existence_check(|req, _, s| async move { Ok(s.get(&req.path).await?.is_some()) })
                .write(write_note)
                .read(read_note)
                .delete(|req, _, s| async move {
                    s.delete(&req.path).await?;
                    Ok(None)
                }),
        )
}

fn main() -> std::process::ExitCode {
    lockbox_sdk::serve(backend())
}
