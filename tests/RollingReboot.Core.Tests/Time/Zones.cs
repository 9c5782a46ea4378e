namespace RollingReboot.Core.Tests.Time;

/// <summary>
/// Europe/Amsterdam built from its rules (CET +01:00, CEST +02:00 from the last Sunday of March 01:00 UTC to the last
/// Sunday of October 01:00 UTC, as in tzdata since 1996), so the tests need no tzdata on the machine; one test checks
/// it against the machine's tzdata where that is installed (CI installs it).
/// </summary>
internal static class Zones
{
    public static TimeZoneInfo Amsterdam { get; } = TimeZoneInfo.CreateCustomTimeZone(
        "Europe/Amsterdam", TimeSpan.FromHours(1), "Europe/Amsterdam", "CET", "CEST",
        [
            TimeZoneInfo.AdjustmentRule.CreateAdjustmentRule(
                new DateTime(1996, 1, 1), DateTime.MaxValue.Date, TimeSpan.FromHours(1),
                TimeZoneInfo.TransitionTime.CreateFloatingDateRule(new DateTime(1, 1, 1, 2, 0, 0), 3, 5, DayOfWeek.Sunday),
                TimeZoneInfo.TransitionTime.CreateFloatingDateRule(new DateTime(1, 1, 1, 3, 0, 0), 10, 5, DayOfWeek.Sunday)),
        ]);

    /// <summary>A zone far from UTC (UTC+13:45, no DST), where the local date is not the UTC date for most of the day.</summary>
    public static TimeZoneInfo Chatham { get; } =
        TimeZoneInfo.CreateCustomTimeZone("Pacific/Chatham-fixed", new TimeSpan(12, 45, 0), "UTC+12:45", "UTC+12:45");
}
