using Microsoft.Extensions.Time.Testing;
using RollingReboot.Cli.Commands;

namespace RollingReboot.Cli.Tests.Commands;

public sealed class WindowEndTests
{
    private static readonly FakeTimeProvider s_clock = new(new DateTimeOffset(2026, 11, 22, 23, 0, 0, TimeSpan.Zero));

    [Fact]
    public void Duration_IsFromNow() =>
        Assert.Equal(s_clock.GetUtcNow().AddMinutes(90), RunCommand.ParseWindowEnd("90m", s_clock));

    [Fact]
    public void AbsoluteTimeWithOffset_IsThatMoment() =>
        Assert.Equal(new DateTimeOffset(2026, 11, 23, 4, 0, 0, TimeSpan.Zero), RunCommand.ParseWindowEnd("2026-11-23T04:00Z", s_clock));

    [Fact]
    public void BareTimeOfDayAlreadyPastToday_MeansTomorrow()
    {
        var end = RunCommand.ParseWindowEnd("22:30", s_clock);
        Assert.True(end > s_clock.GetUtcNow());
        Assert.True(end - s_clock.GetUtcNow() < TimeSpan.FromDays(1));
    }

    [Theory]
    [InlineData("soon")]
    [InlineData("2020-01-01T00:00Z")]
    public void GarbageOrPast_IsUserFacingError(string text) =>
        Assert.Throws<UserFacingException>(() => RunCommand.ParseWindowEnd(text, s_clock));
}
