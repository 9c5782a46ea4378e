using Microsoft.Extensions.Time.Testing;
using RollingReboot.Cli.Output;
using RollingReboot.Core.Planning;
using RollingReboot.Core.Pool;
using RollingReboot.Core.Run;
using RollingReboot.Core.Run.Journal;
using Spectre.Console;

namespace RollingReboot.Cli.Tests.Output;

/// <summary>The live view's picture from the run's journal lines, phase lines and task progress, on a fake clock.</summary>
public sealed class LiveModelTests
{
    private const long GiB = 1L << 30;
    private static readonly DateTimeOffset s_start = new(2026, 11, 21, 2, 0, 0, TimeSpan.Zero);

    private readonly FakeTimeProvider _clock = new(s_start);

    private static PoolSnapshot Pool(params (string Vm, string Host)[] placement)
    {
        var hosts = new[] { "h1", "h2", "h3" }.Select(n => new HostState("uuid-" + n, n, "10.0.0.1", true, true, 64 * GiB, 32 * GiB, 0, null, null, [], [], [])).ToList();
        var vms = placement.Select(p => new VmState("uuid-" + p.Vm, p.Vm, "Running", "uuid-" + p.Host, 4 * GiB, null, [], [], "", [])).ToList();
        return new PoolSnapshot("pool", "P", "uuid-h1", HaSettings.Disabled, new Dictionary<string, string>(), [], hosts, vms, []);
    }

    private static readonly (string, string)[] s_start3 = [("a", "h1"), ("b", "h1"), ("c", "h1"), ("d", "h2")];

    private LiveModel Model(PoolSnapshot pool) =>
        new("C", pool, MetricsFile.Guess(pool, PlanOptions.Default), _clock, assumedRebootSeconds: 300, assumedLinkMBps: 250);

    private void Journal(LiveModel model, RunEvent e) => model.Observe(RunJournal.Serialize(e, _clock.GetUtcNow()));

    [Fact]
    public void Snapshot_FollowsAHostThroughItsEvacuation_WithTaskProgressAndBytes()
    {
        var pool = Pool(s_start3);
        var model = Model(pool);
        Journal(model, new RunStarted("run-1", "pool", "P", "C"));
        _clock.Advance(TimeSpan.FromSeconds(10));
        Journal(model, new HostDisableIntended("uuid-h1", "h1"));
        model.Phase("h1", "evacuating (master)");
        Journal(model, new MigrationIntended("uuid-a", "a", "uuid-h1", "uuid-h2"));
        Journal(model, new MigrationIntended("uuid-b", "b", "uuid-h1", "uuid-h3"));
        _clock.Advance(TimeSpan.FromSeconds(30));
        Journal(model, new MigrationDone("uuid-a", "uuid-h2"));
        model.MigrationProgress("uuid-b", 0.5);

        var h1 = model.Snapshot().Hosts.Single(h => h.Name == "h1");
        Assert.Equal("evacuating", h1.Phase);
        Assert.True(h1.IsMaster);
        Assert.Equal("1/3 +1 at 50%", h1.Migrations);
        Assert.Equal(6 * GiB, h1.BytesMoved);
        Assert.Equal(30, h1.ElapsedSeconds);
        // 6 GiB left (4 of c, 2 of b) at the 4 GiB in 30 s seen so far, then the assumed 300 s reboot.
        Assert.Equal((6.0 * GiB / (4.0 * GiB / 30)) + 300, h1.EtaSeconds!.Value, 3);

        var h2 = model.Snapshot().Hosts.Single(h => h.Name == "h2");
        Assert.Equal("waiting", h2.Phase);
        Assert.Equal("0/1", h2.Migrations);
    }

    [Fact]
    public void Snapshot_HookPhaseAfterTheJournal_ThenReboot_ThenDone()
    {
        var model = Model(Pool(s_start3));
        Journal(model, new RunStarted("run-1", "pool", "P", "C"));
        Journal(model, new HostDisableIntended("uuid-h2", "h2"));
        Journal(model, new MigrationIntended("uuid-d", "d", "uuid-h2", "uuid-h1"));
        Journal(model, new MigrationDone("uuid-d", "uuid-h1"));
        model.PoolRead(Pool(("a", "h1"), ("b", "h1"), ("c", "h1"), ("d", "h1")));
        Journal(model, new HostEmptied("uuid-h2"));
        model.Phase("h2", "pre hook");
        Assert.Equal("pre hook", model.Snapshot().Hosts.Single(h => h.Name == "h2").Phase);

        Journal(model, new RebootIntended("uuid-h2", "h2", 1, null, null));
        _clock.Advance(TimeSpan.FromSeconds(100));
        var rebooting = model.Snapshot().Hosts.Single(h => h.Name == "h2");
        Assert.Equal("rebooting", rebooting.Phase);
        Assert.Equal("1/1", rebooting.Migrations);
        Assert.Equal(200, rebooting.EtaSeconds!.Value, 3);

        Journal(model, new HostBack("uuid-h2"));
        Journal(model, new HostFinished("uuid-h2", "h2", false, 1, 4 * GiB, 40, 100));
        model.Phase("h2", "done (1 migrations in 40 s, back after 100 s)");
        var s = model.Snapshot();
        var done = s.Hosts.Single(h => h.Name == "h2");
        Assert.Equal("done", done.Phase);
        Assert.Null(done.EtaSeconds);
        Assert.Equal(1, s.HostsDone);
        Assert.Equal(3, s.HostsToReboot);
        // h1's VMs were a, b, c before; d arrived on it since: four to move when its turn comes.
        Assert.Equal("0/4", s.Hosts.Single(h => h.Name == "h1").Migrations);
    }

    [Fact]
    public void Load_AResumedJournal_ShowsWhatWasDoneBefore()
    {
        var pool = Pool(s_start3);
        var lines = new[]
        {
            RunJournal.Serialize(new RunStarted("run-1", "pool", "P", "C"), s_start),
            RunJournal.Serialize(new HostFinished("uuid-h1", "h1", true, 3, 12 * GiB, 60, 120), s_start.AddMinutes(3)),
            RunJournal.Serialize(new RunPaused("StoppedRestored", "paused after 1 host"), s_start.AddMinutes(4)),
        };
        var model = Model(pool);
        model.Load(lines);
        _clock.Advance(TimeSpan.FromMinutes(10));
        var s = model.Snapshot();
        Assert.Equal("paused", s.State);
        Assert.Equal(1, s.HostsDone);
        Assert.Equal("done", s.Hosts.Single(h => h.Name == "h1").Phase);
        Assert.Equal(600, s.ElapsedSeconds);
    }

    [Fact]
    public void Render_ShowsTheHeaderAndARowPerHost()
    {
        var model = Model(Pool(s_start3));
        Journal(model, new RunStarted("run-1", "pool", "P", "C"));
        Journal(model, new HostDisableIntended("uuid-h1", "h1"));
        var text = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(text), Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors, Interactive = InteractionSupport.No });
        console.Profile.Width = 140;
        console.Profile.Capabilities.Unicode = true;
        console.Write(LiveView.Render(model.Snapshot()));
        var output = text.ToString();
        Assert.Contains("rollreboot run run-1 · pool P (cluster C) · running · 0/3 hosts done", output, StringComparison.Ordinal);
        foreach (var column in new[] { "HOST", "PHASE", "MIGRATIONS", "GiB MOVED", "ELAPSED", "ETA" })
        {
            Assert.Contains(column, output, StringComparison.Ordinal);
        }

        Assert.Matches(@"h1\*\s*│\s*evacuating\s*│\s*0/3\s*│", output);
        Assert.Matches(@"h3\s*│\s*waiting\s*│\s*0/0\s*│", output);
    }

    [Theory]
    [InlineData("xterm-256color", true)]
    [InlineData("screen", true)]
    [InlineData("dumb", false)]
    [InlineData("", false)]
    [InlineData(null, false)]
    public void CapableTerm_DumbOrUnsetIsPlain(string? term, bool capable) => Assert.Equal(capable, LiveView.CapableTerm(term));

    [Fact]
    public void Wanted_OnlyOnATerminalAndWithoutNoLive()
    {
        var tty = new CliEnvironment { GetVariable = _ => null, Out = TextWriter.Null, Error = TextWriter.Null, ErrorIsTerminal = true };
        var pipe = new CliEnvironment { GetVariable = _ => null, Out = TextWriter.Null, Error = TextWriter.Null, ErrorIsTerminal = false };
        Assert.True(LiveView.Wanted(tty, noLive: false));
        Assert.False(LiveView.Wanted(tty, noLive: true));
        Assert.False(LiveView.Wanted(pipe, noLive: false));
    }
}
