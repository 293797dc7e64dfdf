//! Classic-builder image builds with the context tar streamed to the engine as it is written.
//!
//! A blocking task writes the deterministic tar ([`super::context`]) into a bounded channel in
//! 256 KiB chunks; the channel is the request body, so at most a few MiB of the context are in
//! memory whatever its size. The engine's JSON messages are turned into log lines, and the last
//! `Step N/M :` line, the error message and the last lines of output make [`BuildError::Step`].

use std::collections::{HashMap, VecDeque};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use bollard::models::BuildInfo;
use bollard::query_parameters::{BuildImageOptions, BuilderVersion};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use gear_spec::platform::Platform;

use super::archive::{self, ContextError, TarEntry};
use super::image::split_tag;
use super::{Engine, EngineError};

/// Output lines kept for [`BuildError::Step`] and [`BuildError::Failed`].
const TAIL_LINES: usize = 20;
/// Size of the chunks the context is sent in.
const CHUNK_SIZE: usize = 256 * 1024;
/// Chunks buffered between the tar writer and the HTTP body.
const CHANNEL_CHUNKS: usize = 8;

/// One image build.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildRequest {
    /// The build context's files; the Dockerfile is usually one of them.
    pub context: Vec<TarEntry>,
    /// Path of the Dockerfile inside the context, e.g. `.cargo-gear/Dockerfile`.
    pub dockerfile: String,
    /// `repo:tag` names for the image (`:latest` when a name has no tag).
    pub tags: Vec<String>,
    pub labels: HashMap<String, String>,
    pub build_args: HashMap<String, String>,
    /// A file noting the ID of each step container while the build runs, removed once the
    /// engine reports the build's end (it then removes them itself: `forcerm`). A journal
    /// left behind means the engine died or restarted mid-build and may have kept exited
    /// step containers: [`Engine::remove_build_leftovers`] removes them.
    pub journal: Option<PathBuf>,
    /// Run every step again instead of reusing the engine's build cache.
    pub no_cache: bool,
    /// The platform to build for (the engine's own when `None`).
    pub platform: Option<Platform>,
}

/// A successful build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildOutput {
    /// `sha256:…` when the engine reports it (API ≥ 1.30), else the short id it printed.
    pub image_id: String,
}

/// A failed build.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum BuildError {
    /// An instruction failed.
    #[error("build failed at `{step}`: {message}")]
    #[diagnostic(code("gear::build-step"))]
    Step {
        /// The last `Step N/M : INSTRUCTION` line, e.g. `Step 4/9 : RUN false`.
        step: String,
        /// The engine's message, e.g. `The command '/bin/sh -c false' returned a non-zero code: 1`.
        message: String,
        /// The last lines of output.
        tail: Vec<String>,
    },
    /// The engine rejected the build before running any step (Dockerfile missing or invalid…).
    #[error("the Docker engine rejected the build: {message}")]
    #[diagnostic(code("gear::build-rejected"))]
    Failed { message: String, tail: Vec<String> },
    /// The build context could not be archived.
    #[error("could not send the build context")]
    #[diagnostic(code("gear::build-context"))]
    Context(#[source] ContextError),
    /// Talking to the engine failed.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Engine(#[from] EngineError),
}

impl BuildError {
    /// The last output lines before the failure (empty when there was none).
    pub fn tail(&self) -> &[String] {
        match self {
            BuildError::Step { tail, .. } | BuildError::Failed { tail, .. } => tail,
            BuildError::Context(_) | BuildError::Engine(_) => &[],
        }
    }
}

impl Engine {
    /// Builds an image with the classic builder (`rm`, `forcerm`, no pull), streaming the
    /// context to the engine as it is archived. `log` gets every output line.
    pub async fn build(
        &self,
        req: BuildRequest,
        log: &mut dyn FnMut(&str),
    ) -> Result<BuildOutput, BuildError> {
        let BuildRequest {
            context,
            dockerfile,
            tags,
            labels,
            build_args,
            journal,
            no_cache,
            platform,
        } = req;
        let mut journal = Journal::create(journal);
        let (body, writer) = stream_context(context);

        let options = BuildImageOptions {
            dockerfile,
            // Tagged below, only once the whole context was sent as planned: a tag set by
            // the engine itself would name an image built from a context that failed its
            // check at the very end.
            t: None,
            rm: true,
            forcerm: true,
            pull: None,
            labels: (!labels.is_empty()).then_some(labels),
            buildargs: (!build_args.is_empty()).then_some(build_args),
            nocache: no_cache,
            platform: platform.map(|p| p.to_string()).unwrap_or_default(),
            version: BuilderVersion::BuilderV1,
            ..Default::default()
        };
        let mut progress = BuildProgress::default();
        let mut request_error = None;
        {
            let mut stream =
                self.long
                    .build_image(options, None, Some(bollard::body_try_stream(body)));
            while let Some(message) = stream.next().await {
                match message {
                    Ok(info) => {
                        progress.on_message(&info, log);
                        journal.note(&progress.containers);
                    }
                    // bollard turns a message with an `error` into this.
                    Err(bollard::errors::Error::DockerStreamError { error }) => {
                        progress.on_error(error, log);
                        break;
                    }
                    Err(e) => {
                        request_error = Some(e);
                        break;
                    }
                }
            }
        } // Dropping the stream closes the request, which stops the writer if it is still going.
        progress.flush(log);
        // The engine answered to the end (or refused the build): it removed the step
        // containers. Only a broken connection leaves them to the next build.
        let connection_lost = request_error.as_ref().is_some_and(|e| {
            !matches!(e, bollard::errors::Error::DockerResponseServerError { .. })
        });
        if !connection_lost {
            journal.finish();
        }

        let written = match writer.await {
            Ok(result) => result,
            Err(join) => std::panic::resume_unwind(join.into_panic()),
        };
        // A context that could not be read, or that changed, explains a broken-off request
        // better than the engine's account of the truncated archive or the transport error.
        if let Err(e) = written
            && !e.is_broken_pipe()
        {
            return Err(BuildError::Context(e));
        }
        if progress.error.is_some() {
            return Err(progress.into_error());
        }
        match request_error {
            Some(bollard::errors::Error::DockerResponseServerError { message, .. }) => {
                return Err(BuildError::Failed {
                    message,
                    tail: progress.tail.into(),
                });
            }
            Some(source) => {
                return Err(
                    self.request_error(format!("build {}", describe(&tags)))(source).into(),
                );
            }
            None => {}
        }
        let Some(image_id) = progress.image_id.clone() else {
            return Err(BuildError::Failed {
                message: "the engine reported neither an error nor the built image's id".into(),
                tail: progress.tail.into(),
            });
        };
        for name in &tags {
            let (repo, tag) = split_tag(name);
            self.tag(&image_id, repo, tag).await?;
        }
        Ok(BuildOutput { image_id })
    }
}

/// Archives `context` on a blocking thread into a bounded channel: the returned stream is the
/// request body, and the writer waits whenever the engine has not taken the last chunks yet.
fn stream_context(
    context: Vec<TarEntry>,
) -> (
    impl Stream<Item = io::Result<Bytes>> + Send + 'static,
    JoinHandle<Result<(), ContextError>>,
) {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(CHANNEL_CHUNKS);
    let writer = tokio::task::spawn_blocking(move || {
        let mut body = ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHUNK_SIZE),
        };
        let result = archive::write_context(&context, &mut body);
        if result.is_err() {
            // Break the request off: ending the body cleanly would hand the engine a
            // truncated context that still reads as a valid archive.
            let _ = body
                .tx
                .blocking_send(Err(io::Error::other("build context aborted")));
        }
        result
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    (body, writer)
}

fn describe(tags: &[String]) -> String {
    match tags.first() {
        Some(tag) => format!("image `{tag}`"),
        None => "an untagged image".into(),
    }
}

/// `io::Write` into the request body channel, in [`CHUNK_SIZE`] chunks.
struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(CHUNK_SIZE),
        ));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the Docker engine stopped reading the build context",
            )
        })
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK_SIZE - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK_SIZE {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// The step containers of one build, noted in a file as they start (see
/// [`BuildRequest::journal`]). Writing it never fails a build.
struct Journal {
    file: Option<(PathBuf, std::fs::File)>,
    noted: usize,
}

impl Journal {
    fn create(path: Option<PathBuf>) -> Journal {
        let file = path.and_then(|path| {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).ok()?;
            }
            let file = std::fs::File::create(&path).ok()?;
            Some((path, file))
        });
        Journal { file, noted: 0 }
    }

    /// Appends the containers not noted yet.
    fn note(&mut self, containers: &[String]) {
        let Some(new) = containers.get(self.noted..).filter(|new| !new.is_empty()) else {
            return;
        };
        if let Some((_, file)) = &mut self.file {
            for id in new {
                let _ = writeln!(file, "{id}");
            }
            let _ = file.sync_data();
        }
        self.noted = containers.len();
    }

    /// The engine reported the build's end: nothing is left to remove.
    fn finish(&mut self) {
        if let Some((path, file)) = self.file.take() {
            drop(file);
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The IDs noted in the journals (`*.containers`) under `dir`, by journal.
pub(super) fn journals(dir: &Path) -> Vec<(PathBuf, Vec<String>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<(PathBuf, Vec<String>)> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == JOURNAL_EXTENSION))
        .map(|p| {
            let ids = std::fs::read_to_string(&p)
                .unwrap_or_default()
                .lines()
                .filter(|l| is_container_id(l))
                .map(str::to_owned)
                .collect();
            (p, ids)
        })
        .collect();
    found.sort();
    found
}

/// File extension of build journals.
const JOURNAL_EXTENSION: &str = "containers";

/// The journal of `layer`'s build in `dir` (beside its log): `dir/LAYER.containers`.
pub fn journal_path(dir: &Path, layer: &str) -> PathBuf {
    dir.join(format!("{layer}.{JOURNAL_EXTENSION}"))
}

fn is_container_id(s: &str) -> bool {
    (4..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// What the build's messages said so far.
#[derive(Debug, Default)]
struct BuildProgress {
    /// Stream text after the last newline.
    partial: String,
    /// The last `Step N/M : …` line.
    step: Option<String>,
    tail: VecDeque<String>,
    error: Option<String>,
    /// From the aux message (full id) or "Successfully built" (short id).
    image_id: Option<String>,
    /// The step containers the engine started (` ---> Running in ID` right after a step
    /// line, so that no output of a command can pass for one).
    containers: Vec<String>,
    /// Whether the last line was a step line.
    after_step: bool,
}

impl BuildProgress {
    fn on_message(&mut self, info: &BuildInfo, log: &mut dyn FnMut(&str)) {
        if let Some(text) = &info.stream {
            self.partial.push_str(text);
            while let Some(end) = self.partial.find('\n') {
                let line: String = self.partial.drain(..=end).collect();
                self.line(line.trim_end_matches(['\n', '\r']), log);
            }
        }
        if let Some(status) = &info.status {
            // Layer download progress of a FROM image: only the state changes, not each tick.
            if info
                .progress_detail
                .as_ref()
                .is_none_or(|d| d.current.is_none())
            {
                let line = match &info.id {
                    Some(id) => format!("{id}: {status}"),
                    None => status.clone(),
                };
                self.flush(log);
                self.line(&line, log);
            }
        }
        if let Some(id) = info.aux.as_ref().and_then(|aux| aux.id.as_ref()) {
            self.image_id = Some(id.clone());
        }
        let error = info
            .error_detail
            .as_ref()
            .and_then(|d| d.message.clone())
            .or_else(|| info.error.clone());
        if let Some(error) = error {
            self.on_error(error, log);
        }
    }

    fn on_error(&mut self, error: String, log: &mut dyn FnMut(&str)) {
        self.flush(log);
        self.error = Some(error);
    }

    /// Emits what is left of an unterminated line.
    fn flush(&mut self, log: &mut dyn FnMut(&str)) {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.line(line.trim_end_matches('\r'), log);
        }
    }

    fn line(&mut self, line: &str, log: &mut dyn FnMut(&str)) {
        let after_step = std::mem::replace(&mut self.after_step, false);
        if is_step_line(line) {
            self.step = Some(line.trim().to_owned());
            self.after_step = true;
        } else if let Some(id) = line.strip_prefix("Successfully built ") {
            self.image_id.get_or_insert_with(|| id.trim().to_owned());
        } else if let Some(id) = line.trim().strip_prefix("---> Running in ")
            && after_step
            && is_container_id(id.trim())
        {
            self.containers.push(id.trim().to_owned());
        }
        if self.tail.len() == TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(line.to_owned());
        log(line);
    }

    fn into_error(self) -> BuildError {
        let message = self.error.unwrap_or_default();
        let tail = self.tail.into();
        match self.step {
            Some(step) => BuildError::Step {
                step,
                message,
                tail,
            },
            None => BuildError::Failed { message, tail },
        }
    }
}

/// `Step 4/9 : RUN false` (classic builder).
fn is_step_line(line: &str) -> bool {
    let Some(rest) = line.strip_prefix("Step ") else {
        return false;
    };
    let Some((counts, _)) = rest.split_once(" :") else {
        return false;
    };
    counts.split_once('/').is_some_and(|(n, m)| {
        !n.is_empty()
            && !m.is_empty()
            && n.bytes().all(|b| b.is_ascii_digit())
            && m.bytes().all(|b| b.is_ascii_digit())
    })
}

#[cfg(test)]
mod tests {
    use bollard::models::{ErrorDetail, ImageId, ProgressDetail};

    use super::*;

    fn stream(text: &str) -> BuildInfo {
        BuildInfo {
            stream: Some(text.into()),
            ..Default::default()
        }
    }

    fn run(messages: &[BuildInfo]) -> (BuildProgress, Vec<String>) {
        let mut progress = BuildProgress::default();
        let mut lines = Vec::new();
        for m in messages {
            progress.on_message(m, &mut |l| lines.push(l.to_owned()));
        }
        progress.flush(&mut |l| lines.push(l.to_owned()));
        (progress, lines)
    }

    #[test]
    fn step_containers_are_noted_only_right_after_a_step_line() {
        let (progress, _) = run(&[
            stream("Step 1/3 : FROM busybox\n ---> e57ca2801852\n"),
            stream("Step 2/3 : RUN echo ' ---> Running in 0123456789ab'\n"),
            stream(" ---> Running in 4f1c2a3b4c5d\n"),
            stream(" ---> Running in 0123456789ab\n"),
            stream("Removing intermediate container 4f1c2a3b4c5d\n ---> 9a8b7c6d5e4f\n"),
            stream("Step 3/3 : RUN true\n ---> Running in "),
            stream("aaaabbbbcccc\n"),
        ]);
        assert_eq!(progress.containers, ["4f1c2a3b4c5d", "aaaabbbbcccc"]);
    }

    #[test]
    fn a_journal_lists_the_noted_containers_until_the_build_ends() {
        let dir = tempfile::tempdir().unwrap();
        let path = journal_path(dir.path(), "hello");
        let mut journal = Journal::create(Some(path.clone()));
        journal.note(&["4f1c2a3b4c5d".to_owned()]);
        journal.note(&["4f1c2a3b4c5d".to_owned(), "aaaabbbbcccc".to_owned()]);
        std::fs::write(dir.path().join("hello.log"), "not a journal\n").unwrap();
        assert_eq!(
            journals(dir.path()),
            [(
                path.clone(),
                vec!["4f1c2a3b4c5d".to_owned(), "aaaabbbbcccc".to_owned()]
            )]
        );
        journal.finish();
        assert!(!path.exists());
        assert!(journals(dir.path()).is_empty());
    }

    #[test]
    fn a_failing_run_step_names_the_step_and_the_message() {
        let message = "The command '/bin/sh -c false' returned a non-zero code: 1";
        let (progress, lines) = run(&[
            stream("Step 1/2 : FROM busybox\n"),
            stream(" ---> e57ca2801852\n"),
            stream("Step 2/2 : RUN echo partial && "),
            stream("false\n"),
            stream(" ---> Running in 4f1c\n"),
            stream("partial\n"),
            BuildInfo {
                error: Some(message.into()),
                error_detail: Some(ErrorDetail {
                    code: Some(1),
                    message: Some(message.into()),
                }),
                ..Default::default()
            },
        ]);
        assert_eq!(lines[2], "Step 2/2 : RUN echo partial && false");
        match progress.into_error() {
            BuildError::Step {
                step,
                message: m,
                tail,
            } => {
                assert_eq!(step, "Step 2/2 : RUN echo partial && false");
                assert_eq!(m, message);
                assert_eq!(tail, lines);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_image_id_comes_from_aux_before_the_success_line() {
        let (progress, lines) = run(&[
            stream("Step 1/1 : FROM busybox\n ---> e57ca2801852\n"),
            BuildInfo {
                aux: Some(ImageId {
                    id: Some("sha256:abc".into()),
                }),
                ..Default::default()
            },
            stream("Successfully built abc\nSuccessfully tagged x:1\n"),
        ]);
        assert_eq!(progress.image_id.as_deref(), Some("sha256:abc"));
        assert_eq!(
            lines,
            [
                "Step 1/1 : FROM busybox",
                " ---> e57ca2801852",
                "Successfully built abc",
                "Successfully tagged x:1"
            ]
        );

        let (progress, _) = run(&[stream("Successfully built 0123abcd\n")]);
        assert_eq!(progress.image_id.as_deref(), Some("0123abcd"));
    }

    #[test]
    fn errors_before_any_step_and_unterminated_lines() {
        let (progress, lines) = run(&[
            stream("no newline at the end\r"),
            BuildInfo {
                error: Some("dockerfile parse error line 1".into()),
                ..Default::default()
            },
        ]);
        assert_eq!(lines, ["no newline at the end"]);
        assert!(
            matches!(progress.into_error(), BuildError::Failed { message, .. } if message == "dockerfile parse error line 1")
        );
    }

    #[test]
    fn pull_status_lines_without_download_ticks() {
        let tick = BuildInfo {
            status: Some("Downloading".into()),
            id: Some("abc".into()),
            progress_detail: Some(ProgressDetail {
                current: Some(10),
                total: Some(100),
            }),
            ..Default::default()
        };
        let done = BuildInfo {
            status: Some("Pull complete".into()),
            id: Some("abc".into()),
            ..Default::default()
        };
        let (_, lines) = run(&[tick, done]);
        assert_eq!(lines, ["abc: Pull complete"]);
    }

    #[test]
    fn the_tail_keeps_the_last_lines() {
        let text: String = (0..50).map(|i| format!("line {i}\n")).collect();
        let (progress, _) = run(&[stream(&text)]);
        assert_eq!(progress.tail.len(), TAIL_LINES);
        assert_eq!(progress.tail.back().map(String::as_str), Some("line 49"));
    }

    #[test]
    fn step_lines() {
        assert!(is_step_line("Step 4/9 : RUN false"));
        assert!(!is_step_line("Step x/9 : RUN false"));
        assert!(!is_step_line("Step 4/9: RUN"));
        assert!(!is_step_line(" ---> Running in abc"));
    }

    #[test]
    fn the_channel_writer_sends_full_chunks_and_the_rest_on_flush() {
        let (tx, mut rx) = mpsc::channel(16);
        let mut w = ChannelWriter {
            tx,
            buf: Vec::new(),
        };
        w.write_all(&vec![1u8; CHUNK_SIZE + 10]).unwrap();
        w.flush().unwrap();
        assert_eq!(rx.try_recv().unwrap().unwrap().len(), CHUNK_SIZE);
        assert_eq!(rx.try_recv().unwrap().unwrap().len(), 10);
        drop(rx);
        w.write_all(b"x").unwrap();
        assert_eq!(w.flush().unwrap_err().kind(), io::ErrorKind::BrokenPipe);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_context_is_streamed_with_backpressure_not_built_in_memory() {
        // 64 MiB of context, far more than the channel holds.
        let entries: Vec<_> = (0..16)
            .map(|i| TarEntry::bytes(format!("f{i}"), vec![i as u8; 4 << 20]))
            .collect();
        let (body, writer) = stream_context(entries);
        let mut body = Box::pin(body);
        let first = body.next().await.unwrap().unwrap();
        assert_eq!(first.len(), CHUNK_SIZE);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(!writer.is_finished(), "the writer ran ahead of the reader");

        let mut archive = first.to_vec();
        while let Some(chunk) = body.next().await {
            archive.extend_from_slice(&chunk.unwrap());
        }
        writer.await.unwrap().unwrap();
        let mut expected = Vec::new();
        let entries: Vec<_> = (0..16)
            .map(|i| TarEntry::bytes(format!("f{i}"), vec![i as u8; 4 << 20]))
            .collect();
        archive::write_tar(&entries, &mut expected).unwrap();
        assert!(
            archive == expected,
            "the streamed archive differs from write_tar's"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_context_error_breaks_the_body_off() {
        let entries = vec![
            TarEntry::bytes("a", "x"),
            TarEntry::file("b", "/nonexistent/cargo-gear/b"),
        ];
        let (body, writer) = stream_context(entries);
        let chunks: Vec<_> = body.collect().await;
        assert!(
            chunks.last().unwrap().is_err(),
            "the body must end in an error, not cleanly"
        );
        assert!(matches!(
            writer.await.unwrap(),
            Err(ContextError::Read { .. })
        ));
    }
}
