using System.Globalization;
using Microsoft.Extensions.Time.Testing;
using RollingReboot.Cli.Commands;

namespace RollingReboot.Cli.Tests.Commands;

public sealed class WindowEndTests
{
    private static readonly FakeTimeProvider s_clock = new(new DateTimeOffset(2026, 11, 22, 23, 0, 0, TimeSpan.Zero));

    private static FakeTimeProvider At(string utc, TimeZoneInfo zone)
    {
        var clock = new FakeTimeProvider(DateTimeOffset.ParseExact(utc, "yyyy-MM-dd'T'HH:mmK", CultureInfo.InvariantCulture, DateTimeStyles.None));
        clock.SetLocalTimeZone(zone);
        return clock;
    }

    private static TimeZoneInfo Plus(int hours) =>
        TimeZoneInfo.CreateCustomTimeZone($"UTC+{hours}", TimeSpan.FromHours(hours), $"UTC+{hours}", $"UTC+{hours}");

    [Fact]
    public void Duration_IsFromNow() =>
        Assert.Equal(s_clock.GetUtcNow().AddMinutes(90), TimeArguments.ParseWindowEnd("90m", s_clock));

    [Fact]
    public void AbsoluteTimeWithOffset_IsThatMoment() =>
        Assert.Equal(new DateTimeOffset(2026, 11, 23, 4, 0, 0, TimeSpan.Zero), TimeArguments.ParseWindowEnd("2026-11-23T04:00Z", s_clock));

    [Fact]
    public void BareTimeOfDayAlreadyPastToday_MeansTomorrow()
    {
        var end = TimeArguments.ParseWindowEnd("22:30", s_clock);
        Assert.Equal(new DateTimeOffset(2026, 11, 23, 22, 30, 0, TimeSpan.Zero), end);
    }

    [Theory]
    // The clock's date, however far from the machine's: 2026-12-02 here, when this test was fixed.
    [InlineData("1999-06-30T23:00Z", 0, "04:00", "1999-07-01T04:00Z")]
    [InlineData("2041-01-05T03:00Z", 0, "04:00", "2041-01-05T04:00Z")]
    [InlineData("2026-12-02T12:00Z", 0, "05:30", "2026-12-03T05:30Z")]
    // The clock's zone, not the machine's: 22:00 UTC is 08:00 tomorrow in UTC+10, so 05:30 is the day after.
    [InlineData("2026-12-02T22:00Z", 10, "05:30", "2026-12-03T19:30Z")]
    [InlineData("2026-12-02T22:00Z", 10, "2026-12-04T01:00", "2026-12-03T15:00Z")]
    public void TimesAreReadOnTheRunsClock(string now, int zoneHours, string text, string expected)
    {
        var clock = At(now, Plus(zoneHours));
        var end = TimeArguments.ParseWindowEnd(text, clock);
        Assert.Equal(DateTimeOffset.ParseExact(expected, "yyyy-MM-dd'T'HH:mmK", CultureInfo.InvariantCulture, DateTimeStyles.None), end);
        Assert.True(end > clock.GetUtcNow());
    }

    [Theory]
    [InlineData("soon")]
    [InlineData("2020-01-01T00:00Z")]
    [InlineData("25:00")]
    [InlineData("2026-11-22")]
    public void GarbageOrPast_IsUserFacingError(string text) =>
        Assert.Throws<UserFacingException>(() => TimeArguments.ParseWindowEnd(text, s_clock));
}
