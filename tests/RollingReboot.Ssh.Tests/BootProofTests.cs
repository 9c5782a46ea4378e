using Microsoft.Extensions.Time.Testing;
using RollingReboot.Core.Ports;

namespace RollingReboot.Ssh.Tests;

public class BootProofTests
{
    private const string OldBoot = "0b4f6a0e-0000-4000-8000-000000000001";
    private const string NewBoot = "0b4f6a0e-0000-4000-8000-000000000002";

    private readonly SteppedClock _time = new();

    private static ProbeResult Down => new(ProbeOutcome.HostDown, null, "connection refused");

    private static ProbeResult Answer(string bootId) => new(ProbeOutcome.Answered, bootId, "answered");

    [Fact]
    public async Task WaitForNewBoot_HostComesBackInNewBoot_ProvesWithBackoff()
    {
        var probe = new ScriptedProbe(_time, Down, Down, new(ProbeOutcome.NotReady, null, "no banner"), Answer(OldBoot), Answer(NewBoot));

        var result = await Drive(BootProof.WaitForNewBootAsync(probe, "xen1", "10.0.0.1", OldBoot, TimeSpan.FromMinutes(5), _time));

        Assert.True(result.Proven);
        Assert.Equal(NewBoot, result.BootId);
        Assert.Equal(5, result.Attempts);
        // Pauses of 1, 2, 4, 8 s between the probes.
        Assert.Equal([0, 1, 3, 7, 15], probe.CallTimes.Select(t => t.TotalSeconds));
        Assert.Equal(TimeSpan.FromSeconds(15), result.Elapsed);
    }

    [Fact]
    public async Task WaitForNewBoot_StillOldBoot_KeepsWaitingThenTimesOutWithLastAnswer()
    {
        var probe = new ScriptedProbe(_time, Answer(OldBoot));

        var result = await Drive(BootProof.WaitForNewBootAsync(probe, "xen1", "10.0.0.1", OldBoot, TimeSpan.FromSeconds(60), _time));

        Assert.False(result.Proven);
        Assert.True(result.TimedOut);
        Assert.Null(result.BootId);
        Assert.Equal(ProbeOutcome.Answered, result.LastProbe.Outcome);
        Assert.Contains("still in the previous boot", result.LastProbe.Detail, StringComparison.Ordinal);
        // The pause doubles up to 10 s and the last one is cut at the deadline.
        Assert.Equal([0, 1, 3, 7, 15, 25, 35, 45, 55], probe.CallTimes.Select(t => t.TotalSeconds));
        Assert.Equal(TimeSpan.FromSeconds(60), result.Elapsed);
    }

    [Fact]
    public async Task WaitForNewBoot_HostNeverReturns_TimesOutWithLastOutcome()
    {
        var probe = new ScriptedProbe(_time, Down);

        var result = await Drive(BootProof.WaitForNewBootAsync(probe, "xen1", "10.0.0.1", OldBoot, TimeSpan.FromSeconds(30), _time));

        Assert.True(result.TimedOut);
        Assert.Equal(ProbeOutcome.HostDown, result.LastProbe.Outcome);
        Assert.Contains("connection refused", result.LastProbe.Detail, StringComparison.Ordinal);
        Assert.Equal(6, result.Attempts);
    }

    [Theory]
    [InlineData(ProbeOutcome.AuthFailed)]
    [InlineData(ProbeOutcome.HostKeyRejected)]
    public async Task WaitForNewBoot_RefusalThatRetryCannotFix_GivesUpAtOnce(ProbeOutcome refusal)
    {
        var probe = new ScriptedProbe(_time, Down, new ProbeResult(refusal, null, "refused"), Answer(NewBoot));

        var result = await Drive(BootProof.WaitForNewBootAsync(probe, "xen1", "10.0.0.1", OldBoot, TimeSpan.FromMinutes(5), _time));

        Assert.True(result.GaveUp);
        Assert.False(result.TimedOut);
        Assert.Equal(refusal, result.LastProbe.Outcome);
        Assert.Equal(2, result.Attempts);
        Assert.Equal(TimeSpan.FromSeconds(1), result.Elapsed);
    }

    [Fact]
    public async Task WaitForNewBoot_NoPreviousBootId_AnyAnswerProves()
    {
        var probe = new ScriptedProbe(_time, Down, Answer(OldBoot));

        var result = await Drive(BootProof.WaitForNewBootAsync(probe, "xen1", "10.0.0.1", null, TimeSpan.FromMinutes(5), _time));

        Assert.True(result.Proven);
        Assert.Equal(OldBoot, result.BootId);
    }

    [Fact]
    public async Task WaitForNewBoot_ProbeHangs_IsCancelledAtTheDeadline()
    {
        var probe = new HangingProbe();

        // Only the deadline timer is armed while the probe hangs.
        var result = (await _time.RunAsync(
            BootProof.WaitForNewBootAsync(probe, "xen1", "10.0.0.1", OldBoot, TimeSpan.FromSeconds(20), _time), timersWhenFirstParked: 1))!;

        Assert.True(result.TimedOut);
        Assert.Equal(1, result.Attempts);
        Assert.Equal(TimeSpan.FromSeconds(20), result.Elapsed);
        Assert.True(probe.SawCancellation);
    }

    [Fact]
    public async Task WaitForNewBoot_CallerCancels_Throws()
    {
        using var cancellation = new CancellationTokenSource();
        var probe = new ScriptedProbe(_time, Down);
        var task = BootProof.WaitForNewBootAsync(probe, "xen1", "10.0.0.1", OldBoot, TimeSpan.FromMinutes(5), _time, cancellation.Token);

        await _time.RunAsync(task, timersWhenFirstParked: 2, pauseWhen: () => probe.CallTimes.Count == 2);
        await cancellation.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => task);
        Assert.Equal(2, probe.CallTimes.Count);
    }

    [Fact]
    public async Task WaitForNewBoot_ReportsEveryProbe()
    {
        var probe = new ScriptedProbe(_time, Down, Answer(NewBoot));
        var seen = new List<ProbeOutcome>();

        await Drive(BootProof.WaitForNewBootAsync(probe, "xen1", "10.0.0.1", OldBoot, TimeSpan.FromMinutes(5), _time,
            new SynchronousProgress(r => seen.Add(r.Outcome))));

        Assert.Equal([ProbeOutcome.HostDown, ProbeOutcome.Answered], seen);
    }

    /// <summary>Runs the wait on the fake clock: a deadline timer and the first pause are armed before it first parks.</summary>
    private async Task<BootProofResult> Drive(Task<BootProofResult> task) => (await _time.RunAsync(task, timersWhenFirstParked: 2))!;

    /// <summary>Answers from a script (the last answer repeats) and records when, on the fake clock, it was asked.</summary>
    private sealed class ScriptedProbe(TimeProvider time, params ProbeResult[] script) : IHostProbe
    {
        private readonly DateTimeOffset _start = time.GetUtcNow();

        public List<TimeSpan> CallTimes { get; } = [];

        public Task<ProbeResult> GetBootIdAsync(string hostName, string address, CancellationToken cancellationToken = default)
        {
            cancellationToken.ThrowIfCancellationRequested();
            CallTimes.Add(time.GetUtcNow() - _start);
            return Task.FromResult(script[Math.Min(CallTimes.Count - 1, script.Length - 1)]);
        }
    }

    private sealed class HangingProbe : IHostProbe
    {
        public bool SawCancellation { get; private set; }

        // Not async: the cancellation must complete the returned task inline, so the fake clock alone decides when.
        public Task<ProbeResult> GetBootIdAsync(string hostName, string address, CancellationToken cancellationToken = default)
        {
            var never = new TaskCompletionSource<ProbeResult>();
            cancellationToken.Register(() =>
            {
                SawCancellation = true;
                never.TrySetCanceled(cancellationToken);
            });
            return never.Task;
        }
    }

    private sealed class SynchronousProgress(Action<ProbeResult> report) : IProgress<ProbeResult>
    {
        public void Report(ProbeResult value) => report(value);
    }
}
