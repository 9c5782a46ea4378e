using Microsoft.Extensions.Time.Testing;

namespace RollingReboot.Xapi.Tests;

/// <summary>
/// A restarted master answers HOST_STILL_BOOTING until its start-up completes (xen-api ocaml/xapi/xapi.ml sets it as the
/// emergency error; xapi_host_helpers.ml assert_startup_complete): the client asks it again every second, not with the
/// search's growing back-off (0.5, 1, 2, 4, then 5 s), so a master that serves again is used at once. The delays are
/// read from the timers the client asks its clock for: exact, whatever the machine's speed.
/// </summary>
public sealed class StillBootingRetryTests
{
    /// <summary>A fake clock that remembers every timer's due time.</summary>
    private sealed class RecordingClock(FakeTimeProvider inner) : TimeProvider
    {
        public List<TimeSpan> DueTimes { get; } = [];

        public override DateTimeOffset GetUtcNow() => inner.GetUtcNow();

        public override long GetTimestamp() => inner.GetTimestamp();

        public override long TimestampFrequency => inner.TimestampFrequency;

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            lock (DueTimes)
            {
                DueTimes.Add(dueTime);
            }

            return inner.CreateTimer(callback, state, dueTime, period);
        }
    }

    [Fact]
    public async Task Login_MasterStillBooting_AskedAgainEverySecond_ThenUsed()
    {
        var stillBooting = 5;
        await using var server = await CannedXapiServer.StartAsync((c, body) =>
        {
            if (body.Contains("session.login_with_password", StringComparison.Ordinal) && Interlocked.Decrement(ref stillBooting) >= 0)
            {
                return Respond.Json(c, """{"jsonrpc":"2.0","error":["HOST_STILL_BOOTING"],"id":1}""");
            }

            return Respond.LoginThen((cc, _) => Respond.Json(cc, """{"jsonrpc":"2.0","result":["OpaqueRef:vm1"],"id":2}"""))(c, body);
        });
        var fake = new FakeTimeProvider(new DateTimeOffset(2026, 3, 1, 8, 0, 0, TimeSpan.Zero));
        var clock = new RecordingClock(fake);
        await using var client = new XapiClient(new XapiClientOptions
        {
            Url = server.Url,
            UserName = "root",
            Password = "secret",
            Certificates = new Tls.XapiCertificatePolicy([server.Fingerprint]),
            MasterSearchTimeout = TimeSpan.FromSeconds(60),
            TimeProvider = clock,
        });
        using var stop = new CancellationTokenSource();
        var pump = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                fake.Advance(TimeSpan.FromMilliseconds(100));
                await Task.Delay(TimeSpan.FromMilliseconds(1), TimeProvider.System);
            }
        });

        try
        {
            var result = await client.CallAsync("VM.get_all", []).WaitAsync(TimeSpan.FromSeconds(60), TimeProvider.System);
            Assert.Equal("OpaqueRef:vm1", result![0]!.ToString());
        }
        finally
        {
            await stop.CancelAsync();
            await pump;
        }

        List<TimeSpan> due;
        lock (clock.DueTimes)
        {
            due = [.. clock.DueTimes];
        }

        // Five refusals, five waits of a second; none of the back-off's 0.5, 2, 4 or 5 s.
        Assert.Equal(5, due.Count(d => d == TimeSpan.FromSeconds(1)));
        Assert.DoesNotContain(due, d => d == TimeSpan.FromMilliseconds(500) || d == TimeSpan.FromSeconds(2) || d == TimeSpan.FromSeconds(4) || d == TimeSpan.FromSeconds(5));
        Assert.Equal(6, server.Requests.Count(r => r.Contains("session.login_with_password", StringComparison.Ordinal)));
    }
}
