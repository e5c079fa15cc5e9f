module minverify

go 1.22
