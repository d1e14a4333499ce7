"""Collectors: read the store databases and feed the customer's BI and Zabbix.

`engine` runs the incremental, spooled delivery every BI collector shares; each collector module
only says what to read and how a row becomes the payload (`coupons`, `coupon_details`,
`coupon_lv`, `sat_config`); `checkout_status` sends Zabbix trapper values and `printer` keeps
Zabbix host macros in step with the store database.
"""
