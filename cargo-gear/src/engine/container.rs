//! Containers for `cargo gear run`: create, attach, start, wait, remove; and the step
//! containers a build the engine never finished left behind.

use bollard::container::LogOutput;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    AttachContainerOptions, CreateContainerOptions, InspectContainerOptions, KillContainerOptions,
    RemoveContainerOptions, WaitContainerOptions,
};
use futures_util::StreamExt;
use gear_spec::platform::Platform;
use std::path::Path;

use super::{Engine, EngineError, status_of};

/// What to run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSpec {
    pub image: String,
    /// Overrides the image's `CMD`.
    pub cmd: Option<Vec<String>>,
    /// Overrides the image's `ENTRYPOINT` (`Some(vec![])` clears it).
    pub entrypoint: Option<Vec<String>>,
    /// `NAME=value` each, added to the image's.
    pub env: Vec<String>,
    /// Overrides the image's `WORKDIR`.
    pub workdir: Option<String>,
    /// `host:container[:ro]` each.
    pub binds: Vec<String>,
    /// `user[:group]`, overriding the image's `USER`.
    pub user: Option<String>,
    /// Remove the container once it has exited (and when starting it fails); false keeps it
    /// for inspection.
    pub auto_remove: bool,
    /// Container name; give one to be able to kill the container from a Ctrl-C handler while
    /// [`Engine::run_container`] waits.
    pub name: Option<String>,
    /// Allocate a terminal (interactive shells on a terminal); output then arrives as stdout.
    pub tty: bool,
    /// The platform of the image to run (the engine picks when `None`).
    pub platform: Option<Platform>,
}

/// Where a container's standard input comes from ([`Engine::run_interactive`]).
pub type Input = Box<dyn tokio::io::AsyncRead + Unpin + Send>;

/// Which output stream a chunk of [`Engine::run_container`] output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StdStream {
    Stdout,
    Stderr,
}

impl Engine {
    /// Runs a container to completion, passing its output to `output` as it comes, and
    /// returns its exit code.
    ///
    /// For Ctrl-C: name the container, race this future against the signal, and on the
    /// signal call [`Engine::kill_container`] and then [`Engine::remove_container`] by name.
    pub async fn run_container(
        &self,
        spec: RunSpec,
        output: &mut dyn FnMut(StdStream, &[u8]),
    ) -> Result<i64, EngineError> {
        self.run(spec, None, output).await
    }

    /// Like [`Engine::run_container`], with `input` copied to the container's standard
    /// input (closed at its end, so a shell fed a script exits).
    pub async fn run_interactive(
        &self,
        spec: RunSpec,
        input: Input,
        output: &mut dyn FnMut(StdStream, &[u8]),
    ) -> Result<i64, EngineError> {
        self.run(spec, Some(input), output).await
    }

    async fn run(
        &self,
        spec: RunSpec,
        input: Option<Input>,
        output: &mut dyn FnMut(StdStream, &[u8]),
    ) -> Result<i64, EngineError> {
        let auto_remove = spec.auto_remove;
        let image = spec.image.clone();
        let options = CreateContainerOptions {
            name: spec.name.clone(),
            platform: spec
                .platform
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
        };
        let body = ContainerCreateBody {
            image: Some(spec.image),
            cmd: spec.cmd,
            entrypoint: spec.entrypoint,
            env: (!spec.env.is_empty()).then_some(spec.env),
            working_dir: spec.workdir,
            user: spec.user,
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            attach_stdin: Some(input.is_some()),
            open_stdin: Some(input.is_some()),
            stdin_once: Some(input.is_some()),
            tty: Some(spec.tty),
            host_config: Some(HostConfig {
                binds: (!spec.binds.is_empty()).then_some(spec.binds),
                ..Default::default()
            }),
            ..Default::default()
        };
        let id = match self.docker.create_container(Some(options), body).await {
            Ok(created) => created.id,
            Err(e) if status_of(&e) == Some(404) => {
                return Err(EngineError::NoImage {
                    image,
                    address: self.address.clone(),
                });
            }
            Err(e) => {
                return Err(self
                    .request_error(format!("create a container from `{image}`"))(
                    e
                ));
            }
        };
        let shown = spec.name.unwrap_or_else(|| id.chars().take(12).collect());

        let result = self
            .attach_start_wait(&id, &shown, auto_remove, input, output)
            .await;
        if result.is_err() && auto_remove {
            let _ = self.remove_container(&id, true).await;
        }
        result
    }

    async fn attach_start_wait(
        &self,
        id: &str,
        shown: &str,
        auto_remove: bool,
        input: Option<Input>,
        output: &mut dyn FnMut(StdStream, &[u8]),
    ) -> Result<i64, EngineError> {
        // Attach before starting so that no output is missed.
        let attach = AttachContainerOptions {
            stream: true,
            stdout: true,
            stderr: true,
            stdin: input.is_some(),
            ..Default::default()
        };
        let mut attached = self
            .long
            .attach_container(id, Some(attach))
            .await
            .map_err(self.request_error(format!("attach to container `{shown}`")))?;
        self.docker
            .start_container(id, None::<bollard::query_parameters::StartContainerOptions>)
            .await
            .map_err(self.request_error(format!("start container `{shown}`")))?;
        let feeder = input.map(|mut input| {
            let mut stdin = attached.input;
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                let _ = tokio::io::copy(&mut input, &mut stdin).await;
                let _ = stdin.shutdown().await;
            })
        });

        while let Some(chunk) = attached.output.next().await {
            match chunk
                .map_err(self.request_error(format!("read the output of container `{shown}`")))?
            {
                LogOutput::StdOut { message } | LogOutput::Console { message } => {
                    output(StdStream::Stdout, &message);
                }
                LogOutput::StdErr { message } => output(StdStream::Stderr, &message),
                LogOutput::StdIn { .. } => {}
            }
        }

        if let Some(feeder) = feeder {
            feeder.abort();
        }
        // The output ends when the container's process does. `not-running` answers at once for
        // an exited container; asking before the start would need `next-exit`, which hangs if
        // the container exits before the engine has registered the request.
        let options = WaitContainerOptions {
            condition: "not-running".into(),
        };
        let waited = self.long.wait_container(id, Some(options)).next().await;
        let code = match waited {
            Some(Ok(response)) => response.status_code,
            // bollard turns a non-zero exit into an error.
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
            Some(Err(e)) => {
                return Err(self.request_error(format!("wait for container `{shown}`"))(
                    e,
                ));
            }
            None => {
                return Err(self.request_error(format!("wait for container `{shown}`"))(
                    bollard::errors::Error::DockerStreamError {
                        error: "the engine closed the wait request".into(),
                    },
                ));
            }
        };
        if auto_remove {
            self.remove_container(id, true).await?;
        }
        Ok(code)
    }

    /// Sends `signal` (default `SIGKILL`) to a running container.
    pub async fn kill_container(
        &self,
        container: &str,
        signal: Option<&str>,
    ) -> Result<(), EngineError> {
        let options = KillContainerOptions {
            signal: signal.unwrap_or("SIGKILL").to_owned(),
        };
        self.docker
            .kill_container(container, Some(options))
            .await
            .map_err(self.request_error(format!("kill container `{container}`")))
    }

    /// Removes a container (`force` kills it first if it runs). Returns false when there was
    /// no such container.
    pub async fn remove_container(
        &self,
        container: &str,
        force: bool,
    ) -> Result<bool, EngineError> {
        let options = RemoveContainerOptions {
            force,
            v: true,
            link: false,
        };
        match self.docker.remove_container(container, Some(options)).await {
            Ok(()) => Ok(true),
            Err(e) if status_of(&e) == Some(404) => Ok(false),
            // Already being removed (auto-remove): as good as gone.
            Err(e) if status_of(&e) == Some(409) => Ok(false),
            Err(e) => Err(self
                .request_error(format!("remove container `{container}`"))(
                e
            )),
        }
    }

    /// Removes the step containers of builds whose end the engine never reported (it was
    /// killed or restarted mid-build, so it kept their exited step containers): the IDs the
    /// builds noted in their journals (`*.containers`, see [`super::BuildRequest::journal`])
    /// under `dir`. Only containers that no longer run are removed; a journal is deleted
    /// once none of its containers is left. Returns how many containers were removed.
    /// Call it with the workspace's build lock held, so that no journal is being written.
    pub async fn remove_build_leftovers(&self, dir: &Path) -> Result<usize, EngineError> {
        let mut removed = 0;
        for (journal, ids) in super::build::journals(dir) {
            let mut left = false;
            for id in ids {
                let info = match self
                    .docker
                    .inspect_container(&id, None::<InspectContainerOptions>)
                    .await
                {
                    Ok(info) => info,
                    Err(e) if status_of(&e) == Some(404) => continue,
                    Err(e) => {
                        return Err(self.request_error(format!("inspect container `{id}`"))(e));
                    }
                };
                if info.state.and_then(|s| s.running) == Some(true) {
                    left = true;
                    continue;
                }
                if self.remove_container(&id, true).await? {
                    removed += 1;
                }
            }
            if !left {
                let _ = std::fs::remove_file(&journal);
            }
        }
        Ok(removed)
    }
}
