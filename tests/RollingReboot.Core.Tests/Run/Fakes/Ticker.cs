using Microsoft.Extensions.Time.Testing;

namespace RollingReboot.Core.Tests.Run.Fakes;

/// <summary>Moves the fake clock on while the run waits (Task.Delay on it), until disposed.</summary>
internal sealed class Ticker : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    public Ticker(FakeTimeProvider clock, TimeSpan step) => _loop = Task.Run(async () =>
    {
        while (!_stop.IsCancellationRequested)
        {
            clock.Advance(step);
            // A real millisecond between steps, so the run under test gets to run.
            await Task.Delay(TimeSpan.FromMilliseconds(1), TimeProvider.System);
        }
    });

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _loop;
        _stop.Dispose();
    }
}
