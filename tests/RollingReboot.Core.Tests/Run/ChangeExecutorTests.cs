using Microsoft.Extensions.Time.Testing;
using RollingReboot.Core.Ports;
using RollingReboot.Core.Run.Engine;
using RollingReboot.Core.Run.State;
using RollingReboot.Core.Tests.Run.Fakes;

namespace RollingReboot.Core.Tests.Run;

public sealed class ChangeExecutorTests
{
    private static readonly DateTimeOffset s_start = new(2026, 11, 22, 1, 0, 0, TimeSpan.Zero);

    /// <summary>The moments a read is asked while it fails <paramref name="failures"/> times with <paramref name="code"/>.</summary>
    private static async Task<List<double>> AskedAtAsync(string code, int failures)
    {
        var clock = new FakeTimeProvider(s_start);
        var executor = new ChangeExecutor(new RunRecorder(new MemoryJournalStore(), clock, RunState.Empty), clock, TimeSpan.FromMinutes(10), new CollectingRunLog());
        var asked = new List<double>();
        var read = executor.ReadAsync(_ =>
        {
            asked.Add((clock.GetUtcNow() - s_start).TotalSeconds);
            return asked.Count <= failures
                ? throw new PoolOperationException(code, [], code) { Kind = PoolErrorKind.Transient }
                : Task.FromResult(asked.Count);
        }, CancellationToken.None);
        for (var i = 0; i < 10_000 && !read.IsCompleted; i++)
        {
            clock.Advance(TimeSpan.FromMilliseconds(100));
            await Task.Yield();
        }

        Assert.Equal(failures + 1, await read);
        return asked;
    }

    [Fact]
    public async Task Read_HostStillBooting_IsAskedAgainEverySecond()
    {
        // host.enable on a host whose xapi has not finished starting (xapi_host.ml assert_safe_to_reenable ->
        // assert_startup_complete): it serves within seconds, and the run acts on it within a second of that.
        var asked = await AskedAtAsync("HOST_STILL_BOOTING", 4);

        Assert.All(asked.Zip(asked.Skip(1), (a, b) => b - a), gap => Assert.InRange(gap, 0.95, 1.25));
    }

    [Fact]
    public async Task Read_OtherTransientErrors_AreAskedAgainEveryFiveSeconds()
    {
        var asked = await AskedAtAsync("HOST_OFFLINE", 3);

        Assert.All(asked.Zip(asked.Skip(1), (a, b) => b - a), gap => Assert.InRange(gap, 4.95, 5.25));
    }
}
